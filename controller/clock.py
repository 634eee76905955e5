"""Time, passed in. Decisions take ``now`` as an argument; only the runtime reads a clock."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall time, Unix seconds (for events and tariffs)."""

    def monotonic(self) -> float:
        """Monotonic seconds (for timeouts and intervals)."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class SimClock:
    """Wall time that a test or the demo can move (``entrada sim clock``): the system's
    time plus an offset. Chosen in config (``[device] clock = "sim"``), never a fallback.
    Monotonic time is the system's, so timeouts and retries keep their real pace."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic()

    def set(self, wall: float) -> None:
        """From now on, ``time()`` reads ``wall`` plus the time elapsed since."""
        with self._lock:
            self._offset = wall - time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
