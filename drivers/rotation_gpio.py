"""The turnstile's rotation sensor on a GPIO pin, through gpiozero's ``Button``.

The sensor (a microswitch on the rotor, or an inductive sensor with an NPN output) pulls
the pin to ground once per turn, so the internal pull-up is on by default
(``rotation_pull_up``). gpiozero's ``bounce_time`` is passed on, but not every pin factory
honours it (the mock factory ignores it), so the driver also debounces in software: an edge
within ``rotation_bounce`` seconds of the last accepted turn is the same turn. The callback
runs in gpiozero's thread and must only hand the turn to the owner thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import Button

from controller.settings import GpioSection
from drivers.debounce import Debouncer
from drivers.rotation import RotationCallback
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class GpioRotation:
    """Implements :class:`drivers.rotation.RotationSensor` with a gpiozero ``Button``."""

    def __init__(
        self,
        cfg: GpioSection,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pin_number = cfg.rotation_pin
        self.bounce = cfg.rotation_bounce
        self._debounce = Debouncer(self.bounce, clock)
        self._lock = threading.Lock()
        self._on_rotation: RotationCallback | None = None
        self._closed = False
        try:
            self._button: Button | None = Button(
                cfg.rotation_pin,
                pull_up=cfg.rotation_pull_up,
                bounce_time=self.bounce or None,
                pin_factory=pin_factory,
            )
        # gpiozero and its backends raise many kinds (GPIOPinInUse, PinInvalidPin,
        # lgpio.error...): all mean "no rotation sensor".
        except Exception as err:
            raise DriverError(f"rotation sensor on GPIO{cfg.rotation_pin}: {err}") from err
        logger.info(
            "rotation sensor on GPIO%s (%s)",
            cfg.rotation_pin,
            "active low, pull-up" if cfg.rotation_pull_up else "active high",
        )

    def start(self, on_rotation: RotationCallback) -> None:
        """Call ``on_rotation()`` for each accepted turn, from gpiozero's thread."""
        with self._lock:
            if self._closed or self._button is None:
                raise DriverError(f"rotation sensor on GPIO{self.pin_number} is closed")
            self._on_rotation = on_rotation
            self._button.when_pressed = self._turned

    def _turned(self) -> None:
        with self._lock:
            on_rotation = self._on_rotation
        if on_rotation is None:
            return
        if not self._debounce.accept():
            logger.debug("rotation sensor GPIO%s: bounce ignored", self.pin_number)
            return
        on_rotation()

    def close(self) -> None:
        """Stop reporting turns and free the pin; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._on_rotation = None
            button, self._button = self._button, None
        if button is None:
            return
        try:
            button.close()  # also drops its when_pressed handler
        except Exception as err:  # see __init__
            raise DriverError(
                f"rotation sensor on GPIO{self.pin_number}: close failed: {err}"
            ) from err
        logger.info("rotation sensor on GPIO%s closed", self.pin_number)
