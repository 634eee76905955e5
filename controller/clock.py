"""Time, passed in. Decisions take ``now`` as an argument; only the runtime reads a clock."""

from __future__ import annotations

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
