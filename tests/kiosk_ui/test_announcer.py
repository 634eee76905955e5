"""The announcer: chime then the spoken pieces, one announcement after another, each reported
done once, whatever the clips and the sound device do."""

from __future__ import annotations

import array
import logging
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from drivers.sound_pygame import PygameSound
from drivers.sound_sim import SimSound
from kiosk_ui.announcer import Announcer
from kiosk_ui.voice_clips import clip_path, write_chime, write_silence
from kiosk_ui.words import spoken_texts

FRAME = 1 / 30


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_tone(path: Path, seconds: float, rate: int = 22050) -> None:
    """A short square-ish tone standing in for a spoken word."""
    samples = array.array(
        "h", (8000 if (n // 25) % 2 else -8000 for n in range(int(seconds * rate)))
    )
    if sys.byteorder == "big":
        samples.byteswap()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A clips folder laid out as voice_clips makes it, with tones instead of speech."""
    root = tmp_path / "clips"
    root.mkdir()
    write_chime(root / "chime.wav")
    write_silence(root / "pause.wav", seconds=0.2)
    for lang in ("en", "pl"):
        for piece in spoken_texts(lang, max_number=12):
            write_tone(clip_path(root, lang, piece), 0.1)
    return root


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sound(clock: Clock) -> SimSound:
    return SimSound(clock=clock)


@pytest.fixture
def done() -> list[str]:
    return []


@pytest.fixture
def announcer(sound: SimSound, clips: Path, done: list[str]) -> Announcer:
    return Announcer(sound, clips, "en", done.append, gap_s=0.5)


def run(announcer: Announcer, clock: Clock, seconds: float) -> None:
    """Pump the announcer frame by frame, as the board's main loop does."""
    end = clock.now + seconds
    while clock.now < end:
        announcer.pump(clock.now)
        clock.now += FRAME


def names(sound: SimSound) -> list[str]:
    return [f"{p.clip.parent.name}/{p.clip.stem}" for p in sound.plays]


def test_an_announcement_is_the_chime_then_the_call_word_by_word(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    announcer.announce("call-1", "A042", "3")
    run(announcer, clock, 1.0)
    assert done == []  # the chime (1.65 s) still sounds

    run(announcer, clock, 4.0)

    assert names(sound) == [
        "clips/chime",
        "en/letter_a",
        "en/digit_0",
        "en/digit_4",
        "en/digit_2",
        "clips/pause",
        "en/word_counter",
        "en/number_3",
    ]
    assert done == ["call-1"] and announcer.idle and announcer.healthy


def test_done_is_reported_only_after_the_last_clip_ended(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    announcer.announce("call-1", "A1", "2")
    while not done:
        assert clock.now < 10.0
        announcer.pump(clock.now)
        clock.now += FRAME

    assert clock.now - FRAME >= sound.plays[-1].ends


def test_three_announcements_play_in_order_without_cutting_each_other_off(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    for n, (ticket, counter) in enumerate([("A001", "1"), ("B002", "12"), ("C003", "7")]):
        announcer.announce(f"call-{n}", ticket, counter)
    assert announcer.pending == 3

    run(announcer, clock, 15.0)

    assert done == ["call-0", "call-1", "call-2"]
    assert sound.overlaps == 0 and sound.stops == 0
    for before, after in zip(sound.plays, sound.plays[1:], strict=False):
        assert after.started >= before.ends
    chimes = [p for p in sound.plays if p.clip.stem == "chime"]
    assert len(chimes) == 3
    ends_of_first = sound.plays[sound.plays.index(chimes[1]) - 1].ends
    assert chimes[1].started - ends_of_first >= 0.5  # the gap between two announcements
    assert "en/number_12" in names(sound)


def test_each_announcement_can_have_its_own_language(
    announcer: Announcer, sound: SimSound, clock: Clock
) -> None:
    announcer.announce("call-1", "A5", "4", language="pl")
    run(announcer, clock, 4.0)

    assert names(sound)[1:] == [
        "pl/letter_a",
        "pl/digit_5",
        "clips/pause",
        "pl/word_counter",
        "pl/number_4",
    ]


def test_a_missing_clip_is_left_out_and_logged_once(
    announcer: Announcer,
    sound: SimSound,
    clock: Clock,
    clips: Path,
    done: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (clips / "en" / "digit_4.wav").unlink()
    announcer.announce("call-1", "A044", "3")
    announcer.announce("call-2", "A045", "3")

    with caplog.at_level(logging.WARNING, logger="kiosk_ui.announcer"):
        run(announcer, clock, 10.0)

    assert done == ["call-1", "call-2"]
    assert "en/digit_4" not in names(sound) and names(sound).count("en/digit_0") == 2
    assert [r.getMessage() for r in caplog.records if "digit_4" in r.getMessage()] == [
        f"announcement clip {clips / 'en' / 'digit_4.wav'} is missing; it is left out"
    ]


def test_an_unplayable_clip_is_left_out_too(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    sound.unplayable.add("letter_b.wav")
    announcer.announce("call-1", "B1", "2")
    run(announcer, clock, 4.0)

    assert done == ["call-1"] and announcer.healthy
    assert "en/letter_b" not in names(sound) and "en/digit_1" in names(sound)


def test_a_failed_device_still_reports_done_and_turns_unhealthy_until_it_plays_again(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    sound.failing = True
    announcer.announce("call-1", "A1", "1")
    announcer.announce("call-2", "A2", "1")
    run(announcer, clock, 2.0)

    assert done == ["call-1", "call-2"]
    assert not announcer.healthy and sound.plays == []

    sound.failing = False
    announcer.announce("call-3", "A3", "1")
    run(announcer, clock, 4.0)
    assert done[-1] == "call-3" and announcer.healthy


def test_a_device_failing_in_the_middle_ends_the_announcement(
    announcer: Announcer, sound: SimSound, clock: Clock, done: list[str]
) -> None:
    announcer.announce("call-1", "A042", "3")
    run(announcer, clock, 0.5)  # the chime plays
    sound.failing = True
    run(announcer, clock, 0.5)

    assert done == ["call-1"] and not announcer.healthy and announcer.idle


def test_a_clip_that_never_ends_is_stopped_and_counts_as_a_failure(
    clips: Path, clock: Clock, done: list[str]
) -> None:
    stuck = SimSound(clock=clock, durations={"chime.wav": 1e9})
    announcer = Announcer(stuck, clips, "en", done.append, max_clip_s=5.0)
    announcer.announce("call-1", "A1", "1")

    run(announcer, clock, 6.0)

    assert done == ["call-1"] and not announcer.healthy and stuck.stops == 1


# ---------------------------------------------------------------- with pygame's real mixer


@pytest.fixture
def captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    pcm = tmp_path / "played.pcm"
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(pcm))
    pygame.mixer.quit()
    yield pcm
    pygame.mixer.quit()


def test_through_the_real_mixer_the_chime_and_words_are_heard(
    captured: Path, clips: Path, done: list[str]
) -> None:
    sound = PygameSound(frequency=22050, channels=1)
    announcer = Announcer(sound, clips, "en", done.append)
    announcer.announce("call-1", "A042", "3")

    deadline = time.monotonic() + 15.0
    while not done:
        assert time.monotonic() < deadline, "the announcement never finished"
        announcer.pump(time.monotonic())
        time.sleep(FRAME)  # a frame of the board's main loop
    sound.close()

    assert done == ["call-1"] and announcer.healthy
    pcm = array.array("h")
    pcm.frombytes(captured.read_bytes())
    if sys.byteorder == "big":
        pcm.byteswap()
    assert max(abs(v) for v in pcm) > 20000  # the chime's peak
    loud_s = sum(1 for v in pcm if abs(v) > 1000) / 22050
    assert loud_s > 0.8 + 6 * 0.1 * 0.9  # the chime, then six tone "words"
