"""The rotation sensor: gpiozero-backed on a MockFactory (with our own debounce), the sim
(manual turns, a dead sensor, automatic turns after a relay pulse) and the sim channel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from controller.settings import GpioSection
from controller.simchannel import SimChannel
from drivers.relay_sim import SimRelay
from drivers.rotation import RotationSensor
from drivers.rotation_gpio import GpioRotation
from drivers.rotation_sim import SimRotation
from entrada.errors import DriverError

PIN = 24


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Turns:
    """Counts callbacks and lets a test wait for them across threads."""

    def __init__(self) -> None:
        self.count = 0
        self.threads: list[str] = []
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= n, timeout)


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def turns() -> Turns:
    return Turns()


def make_sensor(pins, clock, **options) -> GpioRotation:
    cfg = GpioSection(rotation_pin=PIN, **{"rotation_bounce": 0.2, **options})
    return GpioRotation(cfg, pin_factory=pins, clock=clock)


def turn(pins: MockFactory, active_low: bool = True) -> None:
    """The sensor fires once and lets go."""
    pin = pins.pin(PIN)
    if active_low:
        pin.drive_low()
        pin.drive_high()
    else:
        pin.drive_high()
        pin.drive_low()


# ---------------------------------------------------------------------------- gpio


def test_gpio_sensor_implements_the_protocol_and_pulls_up(pins, clock):
    sensor = make_sensor(pins, clock)

    assert isinstance(sensor, RotationSensor)
    assert pins.pin(PIN).pull == "up"
    assert pins.pin(PIN).bounce == pytest.approx(0.2)
    sensor.close()


def test_a_turn_calls_back_once(pins, clock, turns):
    sensor = make_sensor(pins, clock)
    sensor.start(turns)

    turn(pins)

    assert turns.count == 1
    sensor.close()


@pytest.mark.parametrize(
    ("gaps", "accepted"),
    [
        pytest.param([], 1, id="one-turn"),
        pytest.param([0.0, 0.01, 0.05], 1, id="contact-bounce-is-one-turn"),
        pytest.param([0.19], 1, id="just-inside-the-bounce"),
        pytest.param([0.2], 2, id="at-the-bounce-a-new-turn"),
        pytest.param([0.1, 0.1], 2, id="bounce-counts-from-the-last-accepted-turn"),
        pytest.param([1.0, 1.0, 1.0], 4, id="visitors-a-second-apart"),
    ],
)
def test_edges_within_the_bounce_of_the_last_accepted_turn_are_the_same_turn(
    pins, clock, turns, gaps, accepted
):
    sensor = make_sensor(pins, clock)
    sensor.start(turns)

    turn(pins)
    for gap in gaps:
        clock.now += gap
        turn(pins)

    assert turns.count == accepted
    sensor.close()


def test_an_active_high_sensor_fires_on_a_rising_edge(pins, clock, turns):
    sensor = make_sensor(pins, clock, rotation_pull_up=False)
    sensor.start(turns)

    assert pins.pin(PIN).pull == "down"
    turn(pins, active_low=False)

    assert turns.count == 1
    sensor.close()


def test_zero_bounce_accepts_every_edge(pins, clock, turns):
    sensor = make_sensor(pins, clock, rotation_bounce=0)
    sensor.start(turns)

    turn(pins)
    turn(pins)

    assert turns.count == 2
    assert pins.pin(PIN).bounce is None
    sensor.close()


def test_turns_before_start_are_dropped(pins, clock, turns):
    sensor = make_sensor(pins, clock)

    turn(pins)
    sensor.start(turns)
    turn(pins)  # the earlier one was never accepted: no bounce

    assert turns.count == 1
    sensor.close()


def test_close_frees_the_pin_and_is_safe_twice(pins, clock, turns):
    sensor = make_sensor(pins, clock)
    sensor.start(turns)

    sensor.close()
    sensor.close()

    turn(pins)
    assert turns.count == 0
    Button(PIN, pin_factory=pins).close()  # the pin is free again
    with pytest.raises(DriverError, match="closed"):
        sensor.start(turns)


def test_a_pin_in_use_is_a_driver_error(pins, clock):
    taken = Button(PIN, pin_factory=pins)

    with pytest.raises(DriverError, match="rotation sensor on GPIO24"):
        make_sensor(pins, clock)

    taken.close()


# ----------------------------------------------------------------------------- sim


def test_sim_rotate_calls_back_and_is_recorded(turns):
    sensor = SimRotation()
    assert isinstance(sensor, RotationSensor)
    sensor.start(turns)

    sensor.rotate()
    sensor.rotate()

    assert turns.count == 2
    assert sensor.rotations == ["manual", "manual"]


def test_sim_rotate_works_from_another_thread(turns):
    sensor = SimRotation()
    sensor.start(turns)

    worker = threading.Thread(target=sensor.rotate, name="visitor")
    worker.start()
    worker.join(timeout=2)

    assert turns.threads == ["visitor"]


def test_sim_rotate_before_start_or_after_close_is_a_driver_error(turns):
    sensor = SimRotation()
    with pytest.raises(DriverError, match="not started"):
        sensor.rotate()

    sensor.start(turns)
    sensor.close()
    sensor.close()

    with pytest.raises(DriverError, match="closed"):
        sensor.rotate()
    with pytest.raises(DriverError, match="closed"):
        sensor.start(turns)
    assert sensor.rotations == []


def test_a_dead_sim_sensor_reports_nothing(turns):
    sensor = SimRotation()
    sensor.start(turns)
    sensor.dead = True

    sensor.rotate()

    assert turns.count == 0
    assert (sensor.rotations, sensor.missed) == ([], ["manual"])


def test_without_auto_after_a_relay_pulse_turns_nothing(turns):
    sensor = SimRotation()
    relay = SimRelay(on_pulse=sensor.relay_pulsed)
    sensor.start(turns)

    relay.pulse(0.1)

    assert not turns.wait_for(1, timeout=0.2)
    assert sensor.rotations == []


def test_with_auto_after_each_relay_pulse_is_walked_through(turns):
    sensor = SimRotation(auto_after=0.05)
    relay = SimRelay(on_pulse=sensor.relay_pulsed)
    sensor.start(turns)

    relay.pulse(0.1)
    relay.pulse(0.1)

    assert turns.wait_for(2)
    assert sensor.rotations == ["auto", "auto"]
    assert turns.threads == ["sim-rotation", "sim-rotation"]
    sensor.close()


def test_a_stuck_relay_unlocks_nothing_so_nobody_walks_through(turns):
    sensor = SimRotation(auto_after=0.0)
    relay = SimRelay(stuck=True, on_pulse=sensor.relay_pulsed)
    sensor.start(turns)

    with pytest.raises(DriverError, match="stuck"):
        relay.pulse(0.1)

    assert not turns.wait_for(1, timeout=0.2)


def test_close_cancels_automatic_turns_still_to_come(turns):
    sensor = SimRotation(auto_after=0.3)
    sensor.start(turns)
    sensor.relay_pulsed(0.1)

    sensor.close()

    assert not turns.wait_for(1, timeout=0.5)
    assert sensor.rotations == []
    sensor.relay_pulsed(0.1)  # after close: ignored, no timer, no error


def test_a_negative_auto_after_is_refused():
    with pytest.raises(ValueError, match="negative"):
        SimRotation(auto_after=-1)


# ---------------------------------------------------------------------- sim channel


def request(channel: SimChannel, **req) -> dict:
    return channel.dispatch(json.dumps(req).encode())


def test_the_sim_channel_turns_the_simulated_turnstile(tmp_path, turns):
    sensor = SimRotation()
    sensor.start(turns)
    channel = SimChannel(tmp_path, "gate-1", {"rotation": sensor})

    assert request(channel, verb="rotate") == {"ok": True}
    assert turns.count == 1


def test_the_sim_channel_refuses_rotate_without_a_simulated_sensor(tmp_path):
    channel = SimChannel(tmp_path, "gate-1", {})

    reply = request(channel, verb="rotate")

    assert reply == {"ok": False, "error": "this device has no simulated rotation"}
    assert "rotate" in request(channel, verb="spin")["error"]


def test_the_sim_channel_answers_a_sensor_error(tmp_path):
    channel = SimChannel(tmp_path, "gate-1", {"rotation": SimRotation()})

    assert request(channel, verb="rotate") == {
        "ok": False,
        "error": "simulated rotation sensor is not started",
    }
