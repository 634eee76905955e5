"""The gate's green and red LEDs and its buzzer on GPIO pins, through gpiozero.

An outcome code becomes a light-and-sound pattern: ``granted*`` and ``manual*`` light green
with a short beep, ``denied*`` and ``rotation.unexpected`` (a tailgater) light red with a
long beep, ``fault*`` blinks red until the next signal; any other code
(``ignored.debounce``, ``passage.*``...) changes nothing. Every pattern is a
gpiozero background ``blink``, so :meth:`GpioIndicator.signal` returns at once and a new
signal simply replaces the one showing. Each part is optional (pin unset = not fitted).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpiozero import LED, Buzzer, DigitalOutputDevice

from controller.settings import GpioSection
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

#: gpiozero's blink needs an off time; after a single flash the thread only waits this long.
_OFF_TAIL = 0.001


@dataclass(frozen=True)
class IndicatorTimings:
    """How long each part of a pattern lasts, in seconds."""

    grant_light: float = 1.0
    short_beep: float = 0.1
    deny_light: float = 1.5
    long_beep: float = 0.6
    fault_blink: float = 0.25


class GpioIndicator:
    """Implements :class:`drivers.outputs.Indicator` with gpiozero LEDs and a buzzer."""

    def __init__(
        self,
        cfg: GpioSection,
        *,
        pin_factory: Any = None,
        timings: IndicatorTimings | None = None,
    ) -> None:
        self.timings = timings or IndicatorTimings()
        self._lock = threading.Lock()
        self._closed = False
        self.green: LED | None = None
        self.red: LED | None = None
        self.buzzer: Buzzer | None = None
        parts = (
            ("green", LED, cfg.green_pin),
            ("red", LED, cfg.red_pin),
            ("buzzer", Buzzer, cfg.buzzer_pin),
        )
        try:
            for name, kind, pin in parts:
                if pin is not None:
                    setattr(self, name, self._open(name, kind, pin, pin_factory))
        except DriverError:
            with contextlib.suppress(DriverError):  # the first error is the one to report
                self._close_devices()
            raise
        logger.info(
            "indicator: green GPIO%s, red GPIO%s, buzzer GPIO%s",
            cfg.green_pin,
            cfg.red_pin,
            cfg.buzzer_pin,
        )

    @staticmethod
    def _open(name: str, kind: type[DigitalOutputDevice], pin: int, pin_factory: Any) -> Any:
        try:
            return kind(pin, initial_value=False, pin_factory=pin_factory)
        # gpiozero and its backends raise many kinds (GPIOPinInUse, PinInvalidPin,
        # lgpio.error...): all mean this part is unusable.
        except Exception as err:
            raise DriverError(f"indicator {name} on GPIO{pin}: {err}") from err

    def signal(self, outcome: str, detail: Mapping[str, object] | None = None) -> None:
        """Show ``outcome`` (a code from entrada.codes); returns at once. LEDs and a
        buzzer cannot show ``detail``."""
        t = self.timings
        with self._lock:
            if self._closed:
                raise DriverError("indicator is closed")
            try:
                if outcome.startswith(("granted", "manual")):
                    _off(self.red)
                    _flash(self.green, t.grant_light)
                    _flash(self.buzzer, t.short_beep)
                elif outcome.startswith(("denied", "rotation.unexpected")):
                    _off(self.green)
                    _flash(self.red, t.deny_light)
                    _flash(self.buzzer, t.long_beep)
                elif outcome.startswith("fault"):
                    _off(self.green)
                    if self.red is not None:
                        self.red.blink(on_time=t.fault_blink, off_time=t.fault_blink, n=None)
                else:
                    logger.debug("indicator: nothing to show for %s", outcome)
            except Exception as err:  # a backend failing mid-run: see _open
                raise DriverError(f"indicator: cannot show {outcome}: {err}") from err

    def close(self) -> None:
        """Turn everything off and free the pins; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_devices()

    def _close_devices(self) -> None:
        failures: list[str] = []
        for name in ("green", "red", "buzzer"):
            device = getattr(self, name)
            if device is None:
                continue
            try:
                try:
                    device.off()
                finally:
                    device.close()
            except Exception:  # keep closing the others; raise once below
                logger.exception("indicator %s: close failed", name)
                failures.append(name)
            setattr(self, name, None)
        if failures:
            raise DriverError("indicator close failed: " + ", ".join(failures))


def _flash(device: DigitalOutputDevice | None, seconds: float) -> None:
    if device is not None:
        device.blink(on_time=seconds, off_time=_OFF_TAIL, n=1)


def _off(device: DigitalOutputDevice | None) -> None:
    if device is not None:
        device.off()
