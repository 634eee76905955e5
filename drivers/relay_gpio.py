"""The turnstile relay on a GPIO pin, through gpiozero's ``DigitalOutputDevice``.

A pulse is gpiozero's background ``blink(n=1)``: the driver's own thread energises the
relay, waits and releases it, so the caller (the gate's owner thread) never sleeps. A new
pulse while one runs restarts it: gpiozero stops the old blink without touching the pin
and the new one keeps it energised for its full time. The relay is de-energised at
construction and again at close, whatever the pin's active level.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from gpiozero import DigitalOutputDevice

from controller.settings import GpioSection
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

#: gpiozero's blink needs an off time; after the single pulse the thread only waits this long.
_OFF_TAIL = 0.001


class GpioRelay:
    """A relay (BCM ``cfg.relay_pin``) pulsed from the owner thread without blocking it."""

    def __init__(self, cfg: GpioSection, *, pin_factory: Any = None) -> None:
        self.pin_number = cfg.relay_pin
        self._lock = threading.Lock()
        try:
            self._device: DigitalOutputDevice | None = DigitalOutputDevice(
                cfg.relay_pin,
                active_high=cfg.relay_active_high,
                initial_value=False,
                pin_factory=pin_factory,
            )
        # gpiozero and its backends raise many kinds (GPIOPinInUse, BadPinFactory,
        # PinInvalidPin, lgpio.error, PinFactoryFallback...): all mean "no relay".
        except Exception as err:
            raise DriverError(f"relay on GPIO{cfg.relay_pin}: {err}") from err
        logger.info(
            "relay on GPIO%s (active %s), de-energised",
            cfg.relay_pin,
            "high" if cfg.relay_active_high else "low",
        )

    @property
    def energised(self) -> bool:
        """True while the relay is on (False once closed)."""
        device = self._device
        return bool(device is not None and device.is_active)

    def pulse(self, seconds: float) -> None:
        """Energise for ``seconds`` then release, in gpiozero's background thread."""
        if seconds <= 0:
            raise ValueError(f"pulse must be positive, got {seconds}")
        with self._lock:
            device = self._require_open()
            try:
                device.blink(on_time=seconds, off_time=_OFF_TAIL, n=1, background=True)
            except Exception as err:  # a backend failing mid-run: see __init__
                raise DriverError(f"relay on GPIO{self.pin_number}: pulse failed: {err}") from err
        logger.debug("relay GPIO%s pulse %.3f s", self.pin_number, seconds)

    def release(self) -> None:
        """De-energise now, cancelling a running pulse."""
        with self._lock:
            device = self._require_open()
            try:
                device.off()
            except Exception as err:  # see __init__
                raise DriverError(f"relay on GPIO{self.pin_number}: release failed: {err}") from err

    def close(self) -> None:
        """Release, then free the pin; safe to call twice."""
        with self._lock:
            device, self._device = self._device, None
            if device is None:
                return
            try:
                try:
                    device.off()
                finally:
                    device.close()
            except Exception as err:  # see __init__
                raise DriverError(f"relay on GPIO{self.pin_number}: close failed: {err}") from err
        logger.info("relay on GPIO%s released and closed", self.pin_number)

    def _require_open(self) -> DigitalOutputDevice:
        if self._device is None:
            raise DriverError(f"relay on GPIO{self.pin_number} is closed")
        return self._device
