"""The simulated sound output: it records what played, for how long, and fails on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.sound import ClipError, SoundOutput
from drivers.sound_sim import SimSound
from entrada.errors import DriverError
from kiosk_ui.voice_clips import write_chime, write_silence


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    write_chime(tmp_path / "chime.wav")
    write_silence(tmp_path / "pause.wav", seconds=0.25)
    (tmp_path / "odd.wav").write_text("not a wav")
    return tmp_path


def test_it_is_a_sound_output() -> None:
    assert isinstance(SimSound(), SoundOutput)


def test_a_clip_sounds_for_its_wav_length(clock: Clock, clips: Path) -> None:
    sound = SimSound(clock=clock)

    sound.play(clips / "pause.wav")
    clock.now = 0.24
    assert sound.busy()
    clock.now = 0.25
    assert not sound.busy()
    assert sound.plays[0].ends == pytest.approx(0.25, abs=1e-4)


def test_unreadable_wavs_use_the_default_length_or_a_given_one(clock: Clock, clips: Path) -> None:
    sound = SimSound(clock=clock, default_seconds=2.0, durations={"chime.wav": 0.1})

    sound.play(clips / "odd.wav")
    clock.now = 5.0
    sound.play(clips / "chime.wav")

    assert [(p.clip.name, p.started, p.ends) for p in sound.plays] == [
        ("odd.wav", 0.0, 2.0),
        ("chime.wav", 5.0, pytest.approx(5.1)),
    ]
    assert sound.played == [clips / "odd.wav", clips / "chime.wav"]


def test_a_play_over_a_sounding_clip_is_counted_as_an_overlap(clock: Clock, clips: Path) -> None:
    sound = SimSound(clock=clock)
    sound.play(clips / "chime.wav")
    clock.now = 0.5

    sound.play(clips / "pause.wav")

    assert sound.overlaps == 1
    assert sound.plays[0].ends == 0.5  # cut off


def test_finish_and_stop_end_the_clip_now(clock: Clock, clips: Path) -> None:
    sound = SimSound(clock=clock)
    sound.play(clips / "chime.wav")
    sound.finish()
    assert not sound.busy() and sound.stops == 0

    sound.play(clips / "chime.wav")
    sound.stop()
    assert not sound.busy() and sound.stops == 1 and sound.overlaps == 0


def test_a_missing_or_unplayable_clip_is_a_clip_error(clips: Path) -> None:
    with pytest.raises(ClipError):
        SimSound().play(clips / "nope.wav")
    with pytest.raises(ClipError):
        SimSound(unplayable={"chime.wav"}).play(clips / "chime.wav")
    SimSound(require_files=False).play(clips / "nope.wav")


def test_it_fails_on_purpose_and_recovers(clips: Path) -> None:
    sound = SimSound(failing=True)
    with pytest.raises(DriverError):
        sound.play(clips / "chime.wav")
    with pytest.raises(DriverError):
        sound.busy()

    sound.failing = False
    sound.play(clips / "chime.wav")
    assert len(sound.plays) == 1


def test_closed_it_plays_no_more(clips: Path) -> None:
    sound = SimSound()
    sound.close()
    sound.close()
    with pytest.raises(DriverError):
        sound.play(clips / "chime.wav")
