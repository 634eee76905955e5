"""Simulated push buttons, pressed by tests or by `entrada sim press NAME`.

:meth:`SimButtons.press` may be called from any thread; like gpiozero's mock pins it runs
the callback in the caller's thread, and the callback (the app's) only enqueues. Every
accepted press is recorded in ``presses``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from drivers.buttons import PressCallback
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimButtons:
    """Implements :class:`drivers.buttons.Buttons` in memory."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(names)
        #: Names of the buttons pressed, oldest first.
        self.presses: list[str] = []
        self.closed = False
        self._on_press: PressCallback | None = None
        self._lock = threading.Lock()

    def start(self, on_press: PressCallback) -> None:
        """Deliver presses to ``on_press`` from now on."""
        with self._lock:
            if self.closed:
                raise DriverError("simulated buttons are closed")
            self._on_press = on_press

    def press(self, name: str) -> None:
        """Press button ``name`` once (any thread)."""
        if name not in self.names:
            raise ValueError(f"no button {name!r}; configured: {', '.join(self.names) or 'none'}")
        with self._lock:
            on_press = self._on_press
            if self.closed:
                raise DriverError("simulated buttons are closed")
            if on_press is None:
                raise DriverError("simulated buttons are not started")
            self.presses.append(name)
        logger.debug("sim button %s pressed", name)
        on_press(name)

    def close(self) -> None:
        """Stop delivering presses; safe to call twice."""
        with self._lock:
            self.closed = True
            self._on_press = None
