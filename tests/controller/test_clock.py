"""The simulated wall clock and the simulator channel's ``clock`` verb."""

import time

import pytest

from controller.clock import SimClock
from controller.simchannel import SimChannel


def test_set_then_time_runs_on_from_there():
    clock = SimClock()

    clock.set(1_000_000.0)

    assert 1_000_000.0 <= clock.time() < 1_000_001.0


def test_speed_makes_simulated_time_run_faster():
    clock = SimClock()
    clock.set(0.0, speed=1000.0)
    start = time.time()
    while time.time() - start < 0.02:
        pass

    assert clock.time() >= 19.0


def test_advance_moves_forward_keeping_the_speed():
    clock = SimClock()
    clock.set(500.0)

    clock.advance(3600.0)

    assert 4100.0 <= clock.time() < 4101.0


@pytest.fixture
def channel(tmp_path):
    return SimChannel(tmp_path, "gate-1", {"clock": SimClock()})


@pytest.mark.parametrize(
    ("request_line", "error"),
    [
        (b'{"verb": "clock", "set": "noon"}', "set must be a number"),
        (b'{"verb": "clock", "advance": true}', "advance must be a number"),
        (b'{"verb": "clock", "set": 1, "speed": 0}', "speed must be above 0"),
        (b'{"verb": "clock", "speed": NaN}', "speed must be a number"),
    ],
)
def test_bad_clock_requests_are_answered_not_raised(channel, request_line, error):
    reply = channel.dispatch(request_line)

    assert reply["ok"] is False
    assert error in reply["error"]


def test_clock_verb_sets_and_reports_the_time(channel):
    reply = channel.dispatch(b'{"verb": "clock", "set": 86400, "speed": 60}')

    assert reply["ok"] is True
    assert 86400 <= reply["time"] < 86400 + 60


def test_a_device_without_a_sim_clock_refuses_the_verb(tmp_path):
    reply = SimChannel(tmp_path, "gate-1", {}).dispatch(b'{"verb": "clock", "set": 1}')

    assert reply == {"ok": False, "error": "this device has no simulated clock"}
