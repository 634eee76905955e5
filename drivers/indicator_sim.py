"""A simulated LED/buzzer indicator: an instrument that records every outcome shown.

Tests and the simulator control channel read ``signals`` to see what a visitor at the gate
would have seen and heard, in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimIndicator:
    """Implements :class:`drivers.outputs.Indicator` in memory."""

    def __init__(self) -> None:
        #: Every outcome code signalled, oldest first.
        self.signals: list[str] = []
        #: What a screen would show with each signal (explanation key and params), or None.
        self.details: list[dict[str, object] | None] = []
        self.closed = False
        self._lock = threading.Lock()

    @property
    def last(self) -> str | None:
        """The outcome showing now (the last one signalled), if any."""
        with self._lock:
            return self.signals[-1] if self.signals else None

    def signal(self, outcome: str, detail: Mapping[str, object] | None = None) -> None:
        """Record ``outcome`` (and ``detail``, what a screen would show with it)."""
        with self._lock:
            if self.closed:
                raise DriverError("simulated indicator is closed")
            self.signals.append(str(outcome))
            self.details.append(dict(detail) if detail is not None else None)
        logger.debug("sim indicator %s", outcome)

    def close(self) -> None:
        """Stop accepting signals; safe to call twice."""
        with self._lock:
            self.closed = True
