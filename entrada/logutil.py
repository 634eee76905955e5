"""Logging helpers: one line when something goes wrong, not one per message in a flood."""

from __future__ import annotations

import logging
import sys
import time


class RateLimited:
    """Logs a warning per key at most once per ``interval`` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            self.logger.warning(msg + " (and %d more like it)", *args, skipped)
        else:
            self.logger.warning(msg, *args)


def configure(level: str = "INFO") -> None:
    """Log to stderr (journald under systemd), one line per record."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
