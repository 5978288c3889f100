#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests and the integration tests
# that talk to the real binary over stdio and HTTP, to moto (a local AWS look-alike), through the
# official Python MCP SDK, the MCP conformance suite and the MCP Inspector CLI. On first run it
# creates .venv with the pinned Python tools (tests/support/requirements.txt; needs python3 and
# PyPI) and tests/js/node_modules with the pinned npm tools (tests/js/package-lock.json; needs
# npm and the npm registry; Node 22 comes as a package, the system Node is not changed).
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

if [ ! -x tests/js/node_modules/.bin/conformance ] || ! cmp -s tests/js/package-lock.json tests/js/node_modules/.installed-lock; then
  echo "==> installing the pinned MCP conformance suite, MCP Inspector and Node 22 (tests/js)"
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
  cp tests/js/package-lock.json tests/js/node_modules/.installed-lock
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked
