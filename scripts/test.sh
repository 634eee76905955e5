#!/usr/bin/env bash
# Entrada: run the test suite, installing what it needs first.
#
#   scripts/test.sh                  everything (pytest's settings are in pyproject.toml)
#   scripts/test.sh tests/controller -x -k outbox
#
# Every argument goes to pytest unchanged; the exit code is pytest's.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
"$ROOT/scripts/setup.sh"
cd -- "$ROOT"

# No screen, no sound card, no GPIO header needed: pygame draws off screen and plays to
# nowhere, gpiozero uses its mock pins.
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy GPIOZERO_PIN_FACTORY=mock
export PYTHONDONTWRITEBYTECODE=1
exec "$ROOT/.venv/bin/python" -m pytest "$@"
