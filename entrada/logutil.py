"""Logging helpers: one line when something goes wrong, not one per message in a flood."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable


class ThrottledLog:
    """At most one log line per key and interval, with a count of what was held back.

    Keys are coarse (topic leaf and rejection code), so a flood from many devices is still
    a few lines, while each distinct problem is seen at least once. Not thread-safe: one
    instance per thread.
    """

    MAX_KEYS = 1024

    def __init__(
        self,
        log: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._log = log
        self.interval = interval
        self._clock = clock or (lambda: time.monotonic())
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def warning(self, key: object, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged within the interval; True if logged."""
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: object, msg: str, *args: object) -> bool:
        return self.log(logging.ERROR, key, msg, *args)

    def log(self, level: int, key: object, msg: str, *args: object) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) >= self.MAX_KEYS and key not in self._last:
            self._forget(now)
        held = self._held.pop(key, 0)
        if held:
            self._log.log(level, msg + " (and %d more like it)", *args, held)
        else:
            self._log.log(level, msg, *args)
        self._last[key] = now
        return True

    def _forget(self, now: float) -> None:
        for key, last in list(self._last.items()):
            if now - last >= self.interval:
                del self._last[key]
                self._held.pop(key, None)
        if len(self._last) >= self.MAX_KEYS:  # all recent: drop the oldest
            oldest = min(self._last, key=self._last.__getitem__)
            del self._last[oldest]
            self._held.pop(oldest, None)


def configure(level: str = "INFO") -> None:
    """Log to stderr (journald under systemd), one line per record."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
