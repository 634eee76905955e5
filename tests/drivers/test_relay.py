"""The turnstile relay: gpiozero-backed on a MockFactory, and its simulated twin."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from controller.settings import GpioSection
from drivers.outputs import Relay
from drivers.relay_gpio import GpioRelay
from drivers.relay_sim import SimRelay
from entrada.errors import DriverError

PIN = 17


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.002)


def levels(pin) -> list[bool]:
    return [s.state for s in pin.states]


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


def make_relay(pins: MockFactory, **options) -> GpioRelay:
    return GpioRelay(GpioSection(relay_pin=PIN, **options), pin_factory=pins)


# ---------------------------------------------------------------------------- gpio


def test_gpio_relay_implements_the_protocol(pins):
    relay = make_relay(pins)
    assert isinstance(relay, Relay)
    relay.close()


def test_gpio_relay_is_low_at_construction_and_after_close(pins):
    relay = make_relay(pins)
    pin = pins.pin(PIN)
    assert levels(pin) == [False]
    assert pin.function == "output"

    relay.close()
    relay.close()  # safe twice

    assert levels(pin) == [False]
    assert not relay.energised


def test_pulse_goes_high_then_back_low_by_itself(pins):
    relay = make_relay(pins)
    pin = pins.pin(PIN)

    relay.pulse(0.05)  # returns at once: gpiozero's thread times it

    wait_until(lambda: levels(pin) == [False, True, False])
    assert pin.states[2].timestamp >= 0.045  # how long it stayed high
    relay.close()


def test_a_new_pulse_restarts_the_running_one(pins):
    relay = make_relay(pins)
    pin = pins.pin(PIN)
    relay.pulse(0.1)
    wait_until(lambda: pin.state)

    relay.pulse(0.3)

    wait_until(lambda: levels(pin) == [False, True, False])
    assert pin.states[2].timestamp >= 0.29  # open for the full new time, not what was left
    relay.close()


def test_release_cancels_a_running_pulse(pins):
    relay = make_relay(pins)
    pin = pins.pin(PIN)
    relay.pulse(30)
    wait_until(lambda: relay.energised)

    relay.release()

    assert levels(pin) == [False, True, False]
    assert not relay.energised
    relay.close()


def test_close_during_a_pulse_leaves_the_relay_de_energised(pins):
    relay = make_relay(pins)
    pin = pins.pin(PIN)
    relay.pulse(30)
    wait_until(lambda: pin.state)

    relay.close()

    assert levels(pin) == [False, True, False]


def test_active_low_relay_idles_high_and_pulses_low(pins):
    relay = make_relay(pins, relay_active_high=False)
    pin = pins.pin(PIN)
    assert levels(pin) == [False, True]  # driven high (released) at construction
    assert not relay.energised

    relay.pulse(0.05)

    wait_until(lambda: levels(pin) == [False, True, False, True])
    relay.close()
    assert levels(pin) == [False, True, False, True]


def test_closed_relay_refuses_to_pulse(pins):
    relay = make_relay(pins)
    relay.close()

    with pytest.raises(DriverError, match="closed"):
        relay.pulse(1)
    with pytest.raises(DriverError, match="closed"):
        relay.release()


def test_pin_in_use_is_a_driver_error(pins):
    relay = make_relay(pins)

    with pytest.raises(DriverError, match="GPIO17") as caught:
        make_relay(pins)

    assert type(caught.value.__cause__).__name__ == "GPIOPinInUse"
    relay.close()


def test_pulse_must_be_positive(pins):
    relay = make_relay(pins)
    with pytest.raises(ValueError, match="positive"):
        relay.pulse(0)
    relay.close()


# ----------------------------------------------------------------------------- sim


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sim_relay_records_pulses_and_is_energised_until_the_deadline():
    clock = FakeClock()
    relay = SimRelay(clock=clock)
    assert isinstance(relay, Relay)

    relay.pulse(1.0)
    clock.now += 0.5
    assert relay.energised
    relay.pulse(2.0)  # restarts: open 2 s from now
    clock.now += 1.9
    assert relay.energised
    clock.now += 0.2

    assert not relay.energised
    assert relay.pulses == [1.0, 2.0]


def test_sim_relay_energised_turns_false_in_real_time():
    relay = SimRelay()
    relay.pulse(0.05)
    assert relay.energised
    wait_until(lambda: not relay.energised)


def test_sim_relay_counts_releases_and_closes_once():
    relay = SimRelay()
    relay.pulse(5)

    relay.release()
    assert not relay.energised
    relay.close()
    relay.close()

    assert relay.releases == 2
    with pytest.raises(DriverError, match="closed"):
        relay.pulse(1)


def test_stuck_sim_relay_fails_on_purpose():
    relay = SimRelay(stuck=True)

    with pytest.raises(DriverError, match="stuck"):
        relay.pulse(1)

    assert relay.pulses == []
    assert not relay.energised
