"""Named push buttons on GPIO pins (free-pass key, service keys), through gpiozero.

Each configured ``name = pin`` becomes a gpiozero ``Button`` (wired to ground, internal
pull-up). gpiozero's ``bounce_time`` is passed on, but not every pin factory honours it
(the mock factory ignores it), so the driver also debounces in software: a press within
``button_bounce`` seconds of the last accepted press of the same button is dropped. The
callback runs in gpiozero's thread and must only hand the name to the owner thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gpiozero import Button

from controller.settings import GpioSection
from drivers.buttons import PressCallback
from drivers.debounce import Debouncer
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class GpioButtons:
    """Implements :class:`drivers.buttons.Buttons` with gpiozero ``Button`` devices."""

    def __init__(
        self,
        cfg: GpioSection,
        *,
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.names: tuple[str, ...] = tuple(cfg.buttons)
        self.bounce = cfg.button_bounce
        self._debounce = Debouncer(self.bounce, clock)
        self._lock = threading.Lock()
        self._on_press: PressCallback | None = None
        self._buttons: dict[str, Button] = {}
        self._closed = False
        try:
            for name, pin in cfg.buttons.items():
                self._buttons[name] = self._open(name, pin, pin_factory)
        except DriverError:
            with contextlib.suppress(DriverError):  # the first error is the one to report
                self._close_buttons()
            raise
        if not self._buttons:
            logger.warning("gpio buttons selected but none configured (gpio.buttons is empty)")
        else:
            logger.info("buttons: %s", ", ".join(f"{n} GPIO{p}" for n, p in cfg.buttons.items()))

    def _open(self, name: str, pin: int, pin_factory: Any) -> Button:
        try:
            return Button(pin, bounce_time=self.bounce or None, pin_factory=pin_factory)
        # gpiozero and its backends raise many kinds (GPIOPinInUse, PinInvalidPin,
        # lgpio.error...): all mean this button is unusable.
        except Exception as err:
            raise DriverError(f"button {name!r} on GPIO{pin}: {err}") from err

    def start(self, on_press: PressCallback) -> None:
        """Call ``on_press(name)`` for each accepted press, from gpiozero's thread."""
        with self._lock:
            if self._closed:
                raise DriverError("gpio buttons are closed")
            self._on_press = on_press
            for name, button in self._buttons.items():
                button.when_pressed = partial(self._pressed, name)

    def _pressed(self, name: str) -> None:
        with self._lock:
            on_press = self._on_press
        if on_press is None:
            return
        if not self._debounce.accept(name):
            logger.debug("button %s: bounce ignored", name)
            return
        on_press(name)

    def close(self) -> None:
        """Stop delivering presses and free the pins; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._on_press = None
        self._close_buttons()

    def _close_buttons(self) -> None:
        failures: list[str] = []
        for name, button in self._buttons.items():
            try:
                button.close()  # also drops its when_pressed handler
            except Exception:  # keep closing the others; raise once below
                logger.exception("button %s: close failed", name)
                failures.append(name)
        self._buttons.clear()
        if failures:
            raise DriverError("buttons close failed: " + ", ".join(failures))
