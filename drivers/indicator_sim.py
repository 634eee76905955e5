"""A simulated LED/buzzer indicator: an instrument that records every outcome shown.

Tests and the simulator control channel read ``signals`` to see what a visitor at the gate
would have seen and heard, in order.
"""

from __future__ import annotations

import logging
import threading

from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimIndicator:
    """Implements :class:`drivers.outputs.Indicator` in memory."""

    def __init__(self) -> None:
        #: Every outcome code signalled, oldest first.
        self.signals: list[str] = []
        self.closed = False
        self._lock = threading.Lock()

    @property
    def last(self) -> str | None:
        """The outcome showing now (the last one signalled), if any."""
        with self._lock:
            return self.signals[-1] if self.signals else None

    def signal(self, outcome: str) -> None:
        """Record ``outcome``."""
        with self._lock:
            if self.closed:
                raise DriverError("simulated indicator is closed")
            self.signals.append(str(outcome))
        logger.debug("sim indicator %s", outcome)

    def close(self) -> None:
        """Stop accepting signals; safe to call twice."""
        with self._lock:
            self.closed = True
