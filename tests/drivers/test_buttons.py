"""Push buttons: gpiozero-backed on a MockFactory (with our own debounce), and the sim."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from controller.settings import GpioSection
from drivers.buttons import Buttons
from drivers.buttons_gpio import GpioButtons
from drivers.buttons_sim import SimButtons
from entrada.errors import DriverError

OPEN, SERVICE = 5, 6


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_buttons(pins, clock, bounce: float = 0.05) -> GpioButtons:
    cfg = GpioSection(buttons={"open": OPEN, "service": SERVICE}, button_bounce=bounce)
    return GpioButtons(cfg, pin_factory=pins, clock=clock)


def press(pins: MockFactory, number: int) -> None:
    """Push and let go (buttons pull up; pressed pulls the pin to ground)."""
    pins.pin(number).drive_low()
    pins.pin(number).drive_high()


@pytest.fixture
def pressed() -> list[str]:
    return []


# ---------------------------------------------------------------------------- gpio


def test_names_are_the_configured_ones_and_bounce_reaches_gpiozero(pins, clock):
    buttons = make_buttons(pins, clock)

    assert isinstance(buttons, Buttons)
    assert buttons.names == ("open", "service")
    assert pins.pin(OPEN).bounce == pytest.approx(0.05)
    buttons.close()


def test_a_press_calls_back_with_the_name(pins, clock, pressed):
    buttons = make_buttons(pins, clock)
    buttons.start(pressed.append)

    press(pins, SERVICE)

    assert pressed == ["service"]
    buttons.close()


def test_presses_within_the_bounce_of_the_last_accepted_one_are_ignored(pins, clock, pressed):
    buttons = make_buttons(pins, clock, bounce=0.05)
    buttons.start(pressed.append)

    press(pins, OPEN)  # t = 0: accepted
    clock.now += 0.03
    press(pins, OPEN)  # 30 ms after it: bounce
    clock.now += 0.03
    press(pins, OPEN)  # 60 ms after the accepted one (30 after the bounce): accepted
    clock.now += 0.049
    press(pins, OPEN)  # bounce

    assert pressed == ["open", "open"]
    buttons.close()


def test_debounce_is_per_button(pins, clock, pressed):
    buttons = make_buttons(pins, clock)
    buttons.start(pressed.append)

    press(pins, OPEN)
    press(pins, SERVICE)

    assert pressed == ["open", "service"]
    buttons.close()


def test_zero_bounce_accepts_every_press(pins, clock, pressed):
    buttons = make_buttons(pins, clock, bounce=0)
    buttons.start(pressed.append)

    press(pins, OPEN)
    press(pins, OPEN)

    assert pressed == ["open", "open"]
    assert pins.pin(OPEN).bounce is None
    buttons.close()


def test_debounce_uses_the_monotonic_clock_by_default(pins, pressed):
    cfg = GpioSection(buttons={"open": OPEN}, button_bounce=1.0)
    buttons = GpioButtons(cfg, pin_factory=pins)
    buttons.start(pressed.append)

    press(pins, OPEN)
    press(pins, OPEN)

    assert pressed == ["open"]
    buttons.close()


def test_presses_before_start_are_dropped(pins, clock, pressed):
    buttons = make_buttons(pins, clock)

    press(pins, OPEN)
    buttons.start(pressed.append)
    press(pins, OPEN)  # the earlier one was never accepted: no bounce

    assert pressed == ["open"]
    buttons.close()


def test_close_frees_the_pins_and_is_safe_twice(pins, clock, pressed):
    buttons = make_buttons(pins, clock)
    buttons.start(pressed.append)

    buttons.close()
    buttons.close()

    press(pins, OPEN)
    assert pressed == []
    Button(OPEN, pin_factory=pins).close()  # the pin is free again
    with pytest.raises(DriverError, match="closed"):
        buttons.start(pressed.append)


def test_a_pin_in_use_is_a_driver_error_and_frees_the_others(pins, clock):
    taken = Button(SERVICE, pin_factory=pins)

    with pytest.raises(DriverError, match="'service' on GPIO6"):
        make_buttons(pins, clock)

    Button(OPEN, pin_factory=pins).close()  # 'open' was released again
    taken.close()


# ----------------------------------------------------------------------------- sim


def test_sim_press_calls_back_and_is_recorded(pressed):
    buttons = SimButtons(["open", "service"])
    assert isinstance(buttons, Buttons)
    assert buttons.names == ("open", "service")
    buttons.start(pressed.append)

    buttons.press("open")
    buttons.press("open")

    assert pressed == ["open", "open"]
    assert buttons.presses == ["open", "open"]


def test_sim_press_works_from_another_thread(pressed):
    buttons = SimButtons(["open"])
    buttons.start(pressed.append)

    worker = threading.Thread(target=buttons.press, args=("open",))
    worker.start()
    worker.join(timeout=2)

    assert pressed == ["open"]


def test_sim_unknown_button_is_a_value_error(pressed):
    buttons = SimButtons(["open"])
    buttons.start(pressed.append)

    with pytest.raises(ValueError, match="'exit'"):
        buttons.press("exit")
    assert buttons.presses == []


def test_sim_press_before_start_or_after_close_is_a_driver_error():
    buttons = SimButtons(["open"])
    with pytest.raises(DriverError, match="not started"):
        buttons.press("open")

    buttons.start(lambda name: None)
    buttons.close()
    buttons.close()

    with pytest.raises(DriverError, match="closed"):
        buttons.press("open")
    assert buttons.presses == []
