#!/usr/bin/env python3
"""Run a moto server for one test process: `moto_server.py PORT`.

Exits by itself when the process that started it goes away, so a test run never leaves a moto
server behind, whatever way the tests end.
"""

import os
import sys
import time

from moto.server import ThreadedMotoServer

port = int(sys.argv[1])
parent = os.getppid()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print(f"moto listening on 127.0.0.1:{port}", flush=True)
try:
    while os.getppid() == parent:
        time.sleep(0.5)
finally:
    server.stop()
