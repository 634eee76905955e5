"""The display board's sound clips, made once at install time (scripts/prepare-voice.sh).

A board never synthesises speech while it runs: espeak-ng records one WAV per piece of an
announcement here, offline, and the announcer (kiosk_ui/announcer.py) strings the pieces
together. On disk, under the clips folder::

    chime.wav            the two-tone chime played before each announcement
    pause.wav            a short silence: the comma in "A zero four two, counter three"
    en/letter_a.wav      ... letter_z, digit_0 ... digit_9, number_1 ... number_99,
    en/word_counter.wav  the word "counter"; the same names under pl/, cs/, uk/

The piece names and the text spoken for each come from kiosk_ui/words.py. espeak-ng ends
every clip with about 0.3 s of silence; that is trimmed to a short tail so a ticket's
digits follow each other at a natural pace. The chime is synthesised here with ``wave``
and ``math`` (no numpy). Every file is written to a temporary name and renamed into
place, so a board that reads the folder while it is being prepared never sees half a WAV.

    python -m kiosk_ui.voice_clips /var/lib/entrada/voice --languages en,pl
"""

from __future__ import annotations

import argparse
import array
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path

from entrada.errors import EntradaError
from entrada.logutil import configure as configure_logging
from kiosk_ui.words import CHIME, MAX_SPOKEN_NUMBER, PAUSE, VOICES, spoken_texts

logger = logging.getLogger(__name__)

#: Sample rate of every clip (espeak-ng's own rate, so its output is kept as it is).
SAMPLE_RATE = 22050
#: Samples louder than this (of 32767) are speech; the rest at the ends is trimmed.
SILENCE_LEVEL = 300
#: Silence kept after the last loud sample of a spoken clip.
TAIL_SECONDS = 0.06
#: Length of the pause clip.
PAUSE_SECONDS = 0.35
#: espeak-ng speaking rate in words per minute (its default is 175): a waiting room
#: listens once, from across a hall.
SPEED_WPM = 150
#: Longest time one espeak-ng run may take.
ESPEAK_TIMEOUT_S = 30.0


class VoiceError(EntradaError):
    """The clips cannot be made: espeak-ng missing or failing, an unknown language."""


def clip_path(clips_dir: Path, language: str, piece: str) -> Path:
    """Where the clip for ``piece`` in ``language`` lives (chime and pause are shared)."""
    if piece in (CHIME, PAUSE):
        return Path(clips_dir) / f"{piece}.wav"
    return Path(clips_dir) / language / f"{piece}.wav"


def prepare_clips(
    dest_dir: str | os.PathLike[str],
    languages: Iterable[str],
    *,
    max_number: int = MAX_SPOKEN_NUMBER,
    espeak: str = "espeak-ng",
) -> list[Path]:
    """Write the chime, the pause and every spoken piece for ``languages`` under
    ``dest_dir``; returns the files written. Existing clips are replaced.

    Raises VoiceError when espeak-ng is missing or fails, or a language is unknown (checked
    before anything is written)."""
    langs = list(dict.fromkeys(languages))
    unknown = [lang for lang in langs if lang not in VOICES]
    if unknown:
        raise VoiceError(
            f"no voice for language(s) {', '.join(unknown)}; choose from {', '.join(VOICES)}"
        )
    executable = shutil.which(espeak)
    if executable is None:
        raise VoiceError(
            f"{espeak} was not found on PATH: the board's spoken announcements are recorded "
            "with it at install time (Debian: apt-get install espeak-ng)"
        )
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    written = [write_chime(dest / f"{CHIME}.wav"), write_silence(dest / f"{PAUSE}.wav")]
    for lang in langs:
        (dest / lang).mkdir(exist_ok=True)
        texts = spoken_texts(lang, max_number=max_number)
        for piece, text in texts.items():
            written.append(_speak(executable, VOICES[lang], text, clip_path(dest, lang, piece)))
        logger.info("recorded %d %s clips in %s", len(texts), lang, dest / lang)
    return written


def _speak(executable: str, voice: str, text: str, target: Path) -> Path:
    """Record ``text`` with espeak-ng into ``target``, its silent ends trimmed."""
    args = [executable, "-v", voice, "-s", str(SPEED_WPM)]
    if text.startswith("<"):
        args.append("-m")  # SSML: a letter said by its name
    with tempfile.TemporaryDirectory(prefix="entrada-voice-") as tmp:
        raw = Path(tmp) / "raw.wav"
        try:
            subprocess.run(
                [*args, "-w", str(raw), "--", text],
                check=True,
                capture_output=True,
                timeout=ESPEAK_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as err:
            detail = err.stderr.decode(errors="replace").strip()
            raise VoiceError(f"espeak-ng failed on {text!r} ({voice}): {detail}") from err
        except (OSError, subprocess.TimeoutExpired) as err:
            raise VoiceError(f"espeak-ng could not record {text!r} ({voice}): {err}") from err
        samples, rate = _read_mono16(raw)
    return _write_wav(target, trim_silence(samples, rate), rate)


def trim_silence(
    samples: array.array[int],
    rate: int,
    *,
    level: int = SILENCE_LEVEL,
    tail_s: float = TAIL_SECONDS,
) -> array.array[int]:
    """``samples`` without the silence before the first loud sample and with only
    ``tail_s`` of it after the last; all-silent input comes back as it is."""
    loud = [i for i, value in enumerate(samples) if abs(value) > level]
    if not loud:
        return samples
    lead = max(0, loud[0] - int(0.01 * rate))
    end = min(len(samples), loud[-1] + 1 + int(tail_s * rate))
    return samples[lead:end]


def chime_samples(rate: int = SAMPLE_RATE) -> array.array[int]:
    """A soft two-tone "ding-dong" (E5 then C5), bell-like partials that die away."""
    notes = ((0.0, 659.25, 0.9), (0.45, 523.25, 1.2))  # start s, frequency Hz, length s
    total = max(start + length for start, _, length in notes)
    out = [0.0] * int(total * rate)
    for start, freq, length in notes:
        first = int(start * rate)
        for n in range(int(length * rate)):
            t = n / rate
            attack = min(1.0, t / 0.005)  # 5 ms fade-in: no click
            decay = math.exp(-3.5 * t / length)
            tone = (
                math.sin(2 * math.pi * freq * t)
                + 0.35 * math.sin(2 * math.pi * 2 * freq * t)
                + 0.12 * math.sin(2 * math.pi * 3 * freq * t)
            )
            out[first + n] += 0.32 * attack * decay * tone
    peak = 32767 * 0.85 / max(1e-9, max(abs(v) for v in out))
    fade = int(0.02 * rate)  # and a fade-out at the very end
    for n in range(fade):
        out[-1 - n] *= n / fade
    return array.array("h", (int(v * peak) for v in out))


def write_chime(target: Path, rate: int = SAMPLE_RATE) -> Path:
    """Write the chime WAV to ``target``."""
    return _write_wav(target, chime_samples(rate), rate)


def write_silence(target: Path, seconds: float = PAUSE_SECONDS, rate: int = SAMPLE_RATE) -> Path:
    """Write ``seconds`` of silence to ``target`` (the pause between ticket and counter)."""
    return _write_wav(target, array.array("h", bytes(2 * int(seconds * rate))), rate)


def _read_mono16(path: Path) -> tuple[array.array[int], int]:
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise VoiceError(f"{path}: expected 16-bit mono from espeak-ng")
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise VoiceError(f"espeak-ng wrote no readable WAV ({err})") from err
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples, rate


def _write_wav(target: Path, samples: array.array[int], rate: int) -> Path:
    """Write 16-bit mono ``samples`` to ``target`` through a temporary file and a rename."""
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".wav", dir=target.parent)
    # mkstemp makes it 0600: the board's daemon (its own user) must read what root prepared.
    os.fchmod(fd, 0o644)
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(data.tobytes())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kiosk_ui.voice_clips DEST [--languages en,pl,cs,uk]``."""
    parser = argparse.ArgumentParser(
        prog="python -m kiosk_ui.voice_clips",
        description="Record the display board's chime and spoken clips with espeak-ng.",
    )
    parser.add_argument("dest", type=Path, help="clips folder (the board's clips_dir)")
    parser.add_argument(
        "--languages",
        default=",".join(VOICES),
        help=f"comma-separated languages to record (default: {','.join(VOICES)})",
    )
    parser.add_argument(
        "--max-number",
        type=int,
        default=MAX_SPOKEN_NUMBER,
        help="highest counter number recorded as a number (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    try:
        written = prepare_clips(args.dest, languages, max_number=args.max_number)
    except VoiceError as err:
        logger.error("%s", err)
        return 2
    logger.info("%d clips ready in %s", len(written), args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
