"""Software debounce for GPIO inputs.

gpiozero's ``bounce_time`` is not honoured by every pin factory (the mock factory ignores
it), so inputs whose double count would matter (buttons, the turnstile's rotation sensor)
also debounce here: an edge within ``bounce`` seconds of the last accepted one, for the
same key, is the same event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class Debouncer:
    """Thread-safe: gpiozero calls back from its own threads."""

    def __init__(self, bounce: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.bounce = bounce
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}

    def accept(self, key: Hashable = None) -> bool:
        """True for the first edge of ``key`` in a bounce window (and remember it)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.bounce:
                return False
            self._last[key] = now
            return True
