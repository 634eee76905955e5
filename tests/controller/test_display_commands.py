"""A technician's `identify` on a display board: the board's id blinks over it, once a
second, for the time asked; its self-check reports the screen."""

from __future__ import annotations

import time

import pytest
from queue_rig import DisplayRig, display_config

from controller.commands import IdentifyArgs
from drivers.sound_sim import SimSound

BAND = (255, 200, 0)  # the identify band's colour


@pytest.fixture
def rig(tmp_path, broker):
    board = DisplayRig(display_config(tmp_path, broker.port, {}, sound="sim"), SimSound())
    yield board
    board.close()


def band_colour(rig: DisplayRig) -> tuple[int, int, int]:
    surface = rig.rt._surface
    height = surface.get_height()
    colour = surface.get_at((10, height // 2))  # the band's left edge, clear of the text
    return (colour.r, colour.g, colour.b)


def test_identify_blinks_the_board_id_for_the_time_asked(rig: DisplayRig) -> None:
    rig.until(lambda: rig.rt.counters.frames > 0)
    before = band_colour(rig)

    answer = rig.rt.command_handlers()["identify"](IdentifyArgs(seconds=2), 0.0)
    seen = rig.until(lambda: band_colour(rig) == BAND)
    rig.until(lambda: time.monotonic() > rig.rt._identify_until, timeout=5)
    end = time.monotonic() + 1.2
    after: set[tuple[int, int, int]] = set()
    rig.until(lambda: after.add(band_colour(rig)) or time.monotonic() > end, timeout=5)

    assert (answer.ok, answer.result) == (True, {"seconds": 2.0})
    assert before != BAND and seen
    assert BAND not in after  # a whole blink period after the window: no band
    assert rig.rt.self_check() is None  # the screen is open
