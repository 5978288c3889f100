#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests and the integration tests
# that talk to the real binary over stdio and HTTP, to moto (a local AWS look-alike) and through
# the official Python MCP SDK. On first run it creates .venv with the pinned Python tools from
# tests/support/requirements.txt (needs python3 and access to PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! cmp -s tests/support/requirements.txt .venv/requirements.installed; then
  echo "==> creating .venv with the pinned test tools (moto, boto3, mcp, jsonschema)"
  "$python" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/support/requirements.txt
  cp tests/support/requirements.txt .venv/requirements.installed
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked
