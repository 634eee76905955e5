"""A simulated turnstile relay: an instrument that records what the gate asked of it.

It keeps every pulse length, counts releases and knows whether it is energised right now
(a pulse sets a monotonic deadline, so ``energised`` turns False by itself when the time is
up, with no thread). ``stuck=True`` makes it fail on purpose, the way a dead relay driver
would, so fault paths can be tested and demonstrated. ``on_pulse``, when set, is called
with each accepted pulse's length (after the pulse, outside the lock): the simulated
rotation sensor listens there to model a visitor walking through the unlocked turnstile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimRelay:
    """Implements :class:`drivers.outputs.Relay` in memory."""

    def __init__(
        self,
        *,
        stuck: bool = False,
        clock: Callable[[], float] = time.monotonic,
        on_pulse: Callable[[float], None] | None = None,
    ):
        #: When True, :meth:`pulse` raises DriverError (may be flipped at run time).
        self.stuck = stuck
        #: Every pulse asked for, in seconds, oldest first.
        self.pulses: list[float] = []
        #: How many times the relay was released (by :meth:`release` or :meth:`close`).
        self.releases = 0
        self.closed = False
        #: Called with the length of every accepted pulse (see the module docstring).
        self.on_pulse = on_pulse
        self._clock = clock
        self._deadline: float | None = None
        self._lock = threading.Lock()

    @property
    def energised(self) -> bool:
        """True while a pulse runs."""
        with self._lock:
            return self._deadline is not None and self._clock() < self._deadline

    def pulse(self, seconds: float) -> None:
        """Energise for ``seconds``; a pulse during a pulse restarts it."""
        if seconds <= 0:
            raise ValueError(f"pulse must be positive, got {seconds}")
        with self._lock:
            if self.closed:
                raise DriverError("simulated relay is closed")
            if self.stuck:
                raise DriverError("simulated relay is stuck")
            self.pulses.append(seconds)
            self._deadline = self._clock() + seconds
            on_pulse = self.on_pulse
        logger.debug("sim relay pulse %.3f s", seconds)
        if on_pulse is not None:
            on_pulse(seconds)

    def release(self) -> None:
        """De-energise now."""
        with self._lock:
            if self.closed:
                raise DriverError("simulated relay is closed")
            self._release()

    def close(self) -> None:
        """Release and stop accepting pulses; safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self._release()
            self.closed = True

    def _release(self) -> None:
        self._deadline = None
        self.releases += 1
