"""Time, passed in. Decisions take ``now`` as an argument; only the runtime reads a clock."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


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
    time, shifted and optionally sped up (``speed`` simulated seconds per real second).
    Chosen in config (``[device] clock = "sim"``), never a fallback. Monotonic time is the
    system's, so timeouts and retries keep their real pace."""

    def __init__(
        self, anchor: float | None = None, origin: float | None = None, speed: float = 1.0
    ) -> None:
        self._base_real = time.time() if anchor is None else anchor
        self._base_wall = self._base_real if origin is None else origin
        self._speed = speed
        self._lock = threading.Lock()

    @classmethod
    def on_time_line(cls, line: Any) -> SimClock:
        """The clock of a ``[simtime]`` section (anchor, origin, speed)."""
        return cls(line.anchor, line.origin, line.speed)

    def time(self) -> float:
        with self._lock:
            return self._base_wall + (time.time() - self._base_real) * self._speed

    def monotonic(self) -> float:
        return time.monotonic()

    def set(self, wall: float, speed: float | None = None) -> None:
        """From now on ``time()`` reads ``wall`` plus the time elapsed since (times
        ``speed``, if given; otherwise the current speed)."""
        with self._lock:
            self._base_wall = wall
            self._base_real = time.time()
            if speed is not None:
                self._speed = speed

    def advance(self, seconds: float) -> None:
        now = self.time()
        self.set(now + seconds)
