"""The LED/buzzer indicator: outcome patterns on a MockFactory, and the simulated twin."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from controller.settings import GpioSection
from drivers.indicator_gpio import GpioIndicator, IndicatorTimings
from drivers.indicator_sim import SimIndicator
from drivers.outputs import Indicator
from entrada.codes import Fault, Outcome
from entrada.errors import DriverError

GREEN, RED, BUZZER = 27, 22, 23
#: Short patterns so each test finishes in a fraction of a second.
FAST = IndicatorTimings(
    grant_light=0.08, short_beep=0.02, deny_light=0.12, long_beep=0.06, fault_blink=0.02
)


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.002)


def levels(pins: MockFactory, number: int) -> list[bool]:
    return [s.state for s in pins.pin(number).states]


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def indicator(pins) -> Iterator[GpioIndicator]:
    device = GpioIndicator(GpioSection(), pin_factory=pins, timings=FAST)
    yield device
    device.close()


FLASH = [False, True, False]


@pytest.mark.parametrize(
    ("outcome", "lit", "dark", "light", "beep"),
    [
        (Outcome.GRANTED, GREEN, RED, FAST.grant_light, FAST.short_beep),
        (Outcome.MANUAL_OPEN, GREEN, RED, FAST.grant_light, FAST.short_beep),
        (Outcome.DENIED_UNKNOWN, RED, GREEN, FAST.deny_light, FAST.long_beep),
        (Outcome.DENIED_EXPIRED, RED, GREEN, FAST.deny_light, FAST.long_beep),
        (Outcome.ROTATION_UNEXPECTED, RED, GREEN, FAST.deny_light, FAST.long_beep),
    ],
)
def test_outcome_flashes_one_light_and_beeps_once(pins, indicator, outcome, lit, dark, light, beep):
    indicator.signal(outcome)

    wait_until(lambda: levels(pins, lit) == FLASH and levels(pins, BUZZER) == FLASH)
    assert levels(pins, dark) == [False]
    assert pins.pin(lit).states[2].timestamp >= light * 0.9
    assert pins.pin(BUZZER).states[2].timestamp >= beep * 0.9


def test_long_beep_is_longer_than_short_beep():
    assert FAST.long_beep > FAST.short_beep
    defaults = IndicatorTimings()
    assert defaults.long_beep > defaults.short_beep
    assert defaults.grant_light == pytest.approx(1.0)
    assert defaults.deny_light == pytest.approx(1.5)


def test_fault_blinks_red_until_the_next_signal(pins, indicator):
    indicator.signal(Fault.READER_DOWN)
    wait_until(lambda: len(levels(pins, RED)) >= 6)  # on, off, on, off, on...
    assert levels(pins, GREEN) == [False]
    assert levels(pins, BUZZER) == [False]

    indicator.signal(Outcome.GRANTED)

    assert not pins.pin(RED).state
    blinks = len(levels(pins, RED))
    wait_until(lambda: levels(pins, GREEN) == FLASH)
    assert len(levels(pins, RED)) == blinks  # stopped blinking


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.IGNORED_DEBOUNCE,
        Outcome.PASSAGE_COMMITTED,
        Outcome.PASSAGE_ANNULLED,
        "reject.shape",
        "",
    ],
)
def test_other_codes_change_nothing(pins, indicator, outcome):
    indicator.signal(outcome)

    assert [levels(pins, n) for n in (GREEN, RED, BUZZER)] == [[False]] * 3


def test_absent_parts_are_skipped(pins):
    cfg = GpioSection(green_pin=None, buzzer_pin=None)
    indicator = GpioIndicator(cfg, pin_factory=pins, timings=FAST)

    indicator.signal(Outcome.GRANTED)
    indicator.signal(Outcome.DENIED_BLOCKED)

    wait_until(lambda: levels(pins, RED) == FLASH)
    claimed = {info.name for info in pins.pins}
    assert f"GPIO{GREEN}" not in claimed
    assert f"GPIO{BUZZER}" not in claimed
    indicator.close()


def test_close_turns_everything_off_and_is_safe_twice(pins, indicator):
    indicator.signal(Fault.READER_DOWN)
    indicator.signal(Outcome.DENIED_LOST)
    wait_until(lambda: pins.pin(RED).state and pins.pin(BUZZER).state)

    indicator.close()
    indicator.close()

    assert [pins.pin(n).state for n in (GREEN, RED, BUZZER)] == [False] * 3
    with pytest.raises(DriverError, match="closed"):
        indicator.signal(Outcome.GRANTED)


def test_a_pin_in_use_is_a_driver_error_and_frees_the_others(pins):
    with pytest.raises(DriverError, match="red on GPIO27"):
        GpioIndicator(GpioSection(green_pin=27, red_pin=27), pin_factory=pins)

    LED(27, pin_factory=pins).close()  # green was released again
    LED(BUZZER, pin_factory=pins).close()  # never claimed


def test_gpio_indicator_implements_the_protocol(indicator):
    assert isinstance(indicator, Indicator)


# ----------------------------------------------------------------------------- sim


def test_sim_indicator_records_signals():
    indicator = SimIndicator()
    assert isinstance(indicator, Indicator)

    indicator.signal(Outcome.GRANTED)
    indicator.signal(Fault.READER_DOWN)

    assert indicator.signals == ["granted", "fault.reader_down"]
    assert indicator.last == "fault.reader_down"


def test_sim_indicator_close_is_safe_twice_and_final():
    indicator = SimIndicator()
    indicator.close()
    indicator.close()

    with pytest.raises(DriverError):
        indicator.signal(Outcome.GRANTED)
