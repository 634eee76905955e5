"""Recording the board's clips: the chime, the silence trim, and espeak-ng at install time."""

from __future__ import annotations

import array
import itertools
import shutil
import wave
from pathlib import Path

import pytest

from kiosk_ui.voice_clips import (
    SAMPLE_RATE,
    VoiceError,
    chime_samples,
    clip_path,
    main,
    prepare_clips,
    trim_silence,
    write_chime,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


def read_wav(path: Path) -> tuple[array.array[int], wave._wave_params]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        samples = array.array("h")
        samples.frombytes(wav.readframes(wav.getnframes()))
    return samples, params


def test_the_chime_is_two_tones_that_start_and_end_quietly() -> None:
    samples = chime_samples()

    assert 1.2 < len(samples) / SAMPLE_RATE < 2.0
    assert 20000 < max(abs(v) for v in samples) < 32767  # loud, never clipped
    assert max(abs(v) for v in samples[:20]) < 3000  # no click at the start
    assert max(abs(v) for v in samples[-20:]) < 300  # nor at the end
    first, second = samples[: SAMPLE_RATE // 3], samples[-SAMPLE_RATE // 2 : -SAMPLE_RATE // 4]
    assert zero_crossings(first) > zero_crossings(second)  # the second tone is lower


def zero_crossings(samples: array.array[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))


def test_the_chime_file_is_16_bit_mono(tmp_path: Path) -> None:
    samples, params = read_wav(write_chime(tmp_path / "chime.wav"))

    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, SAMPLE_RATE)
    assert samples == chime_samples()
    assert [p.name for p in tmp_path.iterdir()] == ["chime.wav"]  # no temporary left behind


@pytest.mark.parametrize(
    ("samples", "kept"),
    [
        ([0] * 500 + [1000, -1000] + [0] * 5000, (500 - 100, 502 + 600)),
        ([0, 0, 0], (0, 3)),
        ([5000] + [0] * 10, (0, 11)),
    ],
)
def test_silence_is_trimmed_to_a_short_tail(samples: list[int], kept: tuple[int, int]) -> None:
    trimmed = trim_silence(array.array("h", samples), rate=10000, tail_s=0.06)

    assert trimmed == array.array("h", samples[kept[0] : kept[1]])


def test_the_chime_and_pause_are_shared_and_words_are_per_language() -> None:
    assert clip_path(Path("/c"), "pl", "chime") == Path("/c/chime.wav")
    assert clip_path(Path("/c"), "pl", "pause") == Path("/c/pause.wav")
    assert clip_path(Path("/c"), "pl", "digit_4") == Path("/c/pl/digit_4.wav")


def test_without_espeak_the_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="apt-get install espeak-ng"):
        prepare_clips(tmp_path, ["en"], espeak="no-such-espeak-ng")


def test_an_unknown_language_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="xx"):
        prepare_clips(tmp_path / "clips", ["en", "xx"])
    assert not (tmp_path / "clips").exists()


def test_an_espeak_that_fails_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "espeak-broken"
    broken.write_text("#!/bin/sh\necho 'voice not found' >&2\nexit 1\n")
    broken.chmod(0o755)

    with pytest.raises(VoiceError, match="voice not found"):
        prepare_clips(tmp_path / "clips", ["pl"], espeak=str(broken))


@needs_espeak
def test_clips_are_recorded_for_each_language(tmp_path: Path) -> None:
    written = prepare_clips(tmp_path, ["en", "uk"], max_number=3)

    for lang in ("en", "uk"):
        names = sorted(p.name for p in (tmp_path / lang).iterdir())
        assert len(names) == 26 + 10 + 3 + 1
        assert {"letter_a.wav", "digit_0.wav", "number_3.wav", "word_counter.wav"} <= set(names)
    assert set(written) == {p for p in tmp_path.rglob("*") if p.is_file()}
    for clip in ("en/letter_a.wav", "en/word_counter.wav", "uk/digit_4.wav", "uk/letter_w.wav"):
        samples, params = read_wav(tmp_path / clip)
        assert (params.nchannels, params.framerate) == (1, SAMPLE_RATE)
        assert 0.1 < len(samples) / SAMPLE_RATE < 2.0
        assert max(abs(v) for v in samples) > 3000, clip  # someone speaks
        assert max(abs(v) for v in samples[-100:]) < 1500  # and the clip ends quietly
    pause, _ = read_wav(tmp_path / "pause.wav")
    assert len(pause) and not any(pause)


@needs_espeak
def test_the_command_line_records_and_reports_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kiosk_ui.voice_clips.configure_logging", lambda: None)  # keep pytest's
    assert main([str(tmp_path), "--languages", "cs", "--max-number", "2"]) == 0
    assert (tmp_path / "cs" / "number_2.wav").is_file()
    assert main([str(tmp_path), "--languages", "xx"]) == 2
