"""A local SMTP sink for the e-mail alert tests: accepts every message on 127.0.0.1:PORT and
saves each one to DIR/<n>.json as decoded by Python's e-mail package (envelope sender and
recipients, From, To, Subject, the plain-text body) — written to a temporary name and renamed,
so a reader never sees half a file.

Usage: python smtp_sink.py PORT DIR   (runs until killed; prints "ready" when listening)
"""

import email
import email.policy
import itertools
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, out):
        self.out = out
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.counter)
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        saved = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "text": body.get_content() if body is not None else None,
        }
        tmp = os.path.join(self.out, f".{n}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(saved, f)
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    controller = Controller(Save(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
