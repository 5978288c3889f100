#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests and the integration tests
# that talk to the real binary over stdio and HTTP, to moto (a local AWS look-alike), through the
# official Python MCP SDK, the MCP conformance suite and the MCP Inspector CLI, to Redis, and
# renders the HTML report in the system Chromium (installed with apt-get when missing and root).
# On first run it creates .venv with the pinned Python tools (tests/support/requirements.txt;
# needs python3 and PyPI), .venv-c7n with Cloud Custodian (tests/support/requirements-c7n.txt)
# and tests/js/node_modules with the pinned npm tools (tests/js/package-lock.json; needs npm and
# the npm registry; Node 22 comes as a package, the system Node is not changed). It starts a private redis-server when none answers at REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

# Package caches stay inside the clone (.tools/, git-ignored): nothing is cached elsewhere.
export PIP_CACHE_DIR="$PWD/.tools/pip-cache"
export npm_config_cache="$PWD/.tools/npm-cache"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! cmp -s tests/support/requirements.txt .venv/requirements.installed; then
  echo "==> creating .venv with the pinned test tools (moto, boto3, mcp, jsonschema)"
  "$python" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements.txt
  cp tests/support/requirements.txt .venv/requirements.installed
fi

# Cloud Custodian (`custodian validate` of the generated policies) pins its own boto3/botocore,
# which clash with moto's: it gets its own virtualenv.
if [ ! -x .venv-c7n/bin/custodian ] || ! cmp -s tests/support/requirements-c7n.txt .venv-c7n/requirements.installed; then
  echo "==> creating .venv-c7n with the pinned Cloud Custodian (c7n)"
  "$python" -m venv .venv-c7n
  .venv-c7n/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements-c7n.txt
  cp tests/support/requirements-c7n.txt .venv-c7n/requirements.installed
fi

if [ ! -x tests/js/node_modules/.bin/conformance ] || ! cmp -s tests/js/package-lock.json tests/js/node_modules/.installed-lock; then
  echo "==> installing the pinned MCP conformance suite, MCP Inspector and Node 22 (tests/js)"
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
  cp tests/js/package-lock.json tests/js/node_modules/.installed-lock
fi

# The HTML report test renders the report offline in the system Chromium (Debian package
# `chromium`, driven by playwright-core from tests/js). Install it when missing and we are root.
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium for the HTML report test (apt-get install chromium)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is needed for the HTML report test: run \`sudo apt-get install chromium\`" \
      "(or set CHROMIUM to a Chromium binary)" >&2
    exit 1
  fi
fi

# The cache tests need a real Redis at REDIS_URL (default redis://127.0.0.1:6379). When none
# answers, start a private one for this run (nothing kept on disk) and stop it at the end.
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || { echo "redis-server is needed for the cache tests (apt install redis-server)" >&2; exit 1; }
  redis_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "==> no Redis at $REDIS_URL; starting a private redis-server on port $redis_port"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  redis_pid=$!
  trap 'kill $redis_pid 2>/dev/null || true' EXIT
  export REDIS_URL="redis://127.0.0.1:$redis_port"
  for _ in $(seq 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> module layers"
./scripts/check_layers.sh
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked
