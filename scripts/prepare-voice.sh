#!/usr/bin/env bash
# Entrada: record a display board's chime and spoken clips (espeak-ng), once, at install time.
#
#   scripts/prepare-voice.sh DEST [--languages en,pl,cs,uk] [--max-number 99]
#
# DEST is the board's clips folder: chime.wav and pause.wav at its top, one folder of WAVs
# per language (letter_a.wav ... digit_0.wav ... number_1.wav ... word_counter.wav); see
# kiosk_ui/voice_clips.py. Needs espeak-ng (Debian: apt-get install espeak-ng); without it
# the script says so and exits 2. Run scripts/setup.sh first; a second run replaces the clips.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    exec "$ROOT/.venv/bin/python" -m kiosk_ui.voice_clips --help
fi
cd -- "$ROOT"
exec "$ROOT/.venv/bin/python" -m kiosk_ui.voice_clips "$@"
