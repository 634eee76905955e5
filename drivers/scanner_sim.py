"""A simulated barcode/QR scanner: scans come from :meth:`SimScanner.scan` (the simulator
channel's ``scan`` verb, tests).

An instrument like the other simulators: it records every code it delivered (``scans``),
every code it dropped while ``offline`` (``dropped``), and it misbehaves on purpose:
``double_read = True`` delivers each code twice, as a real scanner does when a phone is
held under it, to exercise the dispenser's debounce. Codes are normalised like a real
scanner's (:func:`drivers.scanner.normalise_code`); junk is a ValueError to the caller.
"""

from __future__ import annotations

import logging
import threading

from drivers.scanner import CodeCallback, normalise_code
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class SimScanner:
    """Scanner whose scans are injected; see the module docstring."""

    def __init__(self, name: str = "sim") -> None:
        self.name = name
        self.scans: list[str] = []
        self.dropped: list[str] = []
        self.double_read = False
        #: A scanner unplugged: scans are dropped (and recorded in ``dropped``).
        self.offline = False
        self.closed = False
        self._lock = threading.Lock()
        self._on_code: CodeCallback | None = None

    def start(self, on_code: CodeCallback) -> None:
        with self._lock:
            if self.closed:
                raise DriverError(f"simulated scanner {self.name!r} is closed")
            if self._on_code is not None:
                raise DriverError(f"simulated scanner {self.name!r} is already started")
            self._on_code = on_code
        logger.info("simulated scanner %r started", self.name)

    def stop(self) -> None:
        with self._lock:
            self._on_code = None

    def close(self) -> None:
        with self._lock:
            self._on_code = None
            self.closed = True

    @property
    def started(self) -> bool:
        return self._on_code is not None

    def scan(self, code: str) -> None:
        """A code held under the scanner (from any thread). ValueError if it is junk,
        DriverError if the scanner is not started."""
        text = normalise_code(code)
        with self._lock:
            on_code = self._on_code
            if on_code is None:
                raise DriverError(f"simulated scanner {self.name!r} is not started")
            if self.offline:
                self.dropped.append(text)
                return
            times = 2 if self.double_read else 1
            self.scans.extend([text] * times)
        for _ in range(times):
            on_code(text)
