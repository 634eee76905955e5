"""The pygame.mixer sound output against SDL's ``disk`` audio driver: the PCM it really played
is captured to a file and read back."""

from __future__ import annotations

import array
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from drivers.sound import ClipError, SoundOutput
from drivers.sound_pygame import PygameSound
from entrada.errors import DriverError
from kiosk_ui.voice_clips import write_chime


@pytest.fixture
def captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SDL audio goes to a file; the mixer is closed again after the test."""
    pcm = tmp_path / "played.pcm"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(pcm))
    pygame.mixer.quit()
    yield pcm
    pygame.mixer.quit()


@pytest.fixture
def chime(tmp_path: Path) -> Path:
    return write_chime(tmp_path / "chime.wav")


def wait_until_quiet(sound: PygameSound, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sound.busy():
        assert time.monotonic() < deadline, "the clip never ended"
        time.sleep(0.01)


def read_pcm(path: Path) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(path.read_bytes())
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def test_the_chime_really_sounds(captured: Path, chime: Path) -> None:
    sound = PygameSound(frequency=22050, channels=2)
    assert isinstance(sound, SoundOutput)

    sound.play(chime)
    assert sound.busy()
    wait_until_quiet(sound)
    sound.close()

    samples = read_pcm(captured)
    loud = sum(1 for v in samples if abs(v) > 1000) / 2 / 22050  # stereo frames -> seconds
    assert max(abs(v) for v in samples) > 20000
    assert 0.8 < loud < 2.0


def test_its_settings_win_over_a_mixer_opened_with_defaults(captured: Path) -> None:
    pygame.mixer.init(44100, -16, 1)  # as pygame.init() would, before the driver

    PygameSound(frequency=22050, size=-16, channels=2)

    assert pygame.mixer.get_init() == (22050, -16, 2)


def test_a_missing_or_broken_clip_is_a_clip_error(captured: Path, tmp_path: Path) -> None:
    sound = PygameSound()
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEnothing")

    with pytest.raises(ClipError, match="no such clip"):
        sound.play(tmp_path / "missing.wav")
    with pytest.raises(ClipError, match="cannot be read"):
        sound.play(tmp_path / "broken.wav")
    assert not sound.busy()


def test_a_closed_mixer_is_a_device_error(captured: Path, chime: Path) -> None:
    sound = PygameSound()
    pygame.mixer.quit()  # the device went away under the driver

    with pytest.raises(DriverError, match="not open"):
        sound.play(chime)
    with pytest.raises(DriverError):
        sound.busy()
    sound.close()
    with pytest.raises(DriverError, match="closed"):
        sound.play(chime)


def test_a_device_that_cannot_open_is_a_driver_error(
    captured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")

    with pytest.raises(DriverError, match="cannot open"):
        PygameSound()
