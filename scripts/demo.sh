#!/usr/bin/env bash
# Entrada: run the demo on this machine, installing what it needs first.
#
#   scripts/demo.sh                  a live site demo (see `entrada demo --help`)
#   scripts/demo.sh --headless --duration 60 --chaos --json
#
# Every argument goes to `entrada demo` unchanged. Set-up progress goes to stderr, so
# `scripts/demo.sh --headless --json | jq .` sees only the demo's output.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
"$ROOT/scripts/setup.sh"
cd -- "$ROOT"
exec "$ROOT/.venv/bin/entrada" demo "$@"
