"""The dispenser's plain parts: its drivers, a request waiting for central, its counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from drivers.buttons import Buttons
from drivers.outputs import Indicator
from drivers.printer import TicketPrinter
from drivers.scanner import Scanner

logger = logging.getLogger(__name__)


@dataclass
class Pending:
    """A request sent to central, waiting for its number."""

    request_id: str
    service: str
    priority: bool
    issued_at: float
    deadline: float  # monotonic
    #: An appointment's check-in: no leased number if central does not answer.
    checkin: bool = False


@dataclass
class DispenserCounters:
    presses: int = 0
    #: Codes scanned (a debounced re-read not counted).
    scans: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    late_voided: int = 0


@dataclass(frozen=True)
class DispenserDrivers:
    printer: TicketPrinter
    buttons: Buttons | None = None
    indicator: Indicator | None = None
    #: Barcode/QR scanner for appointments' check-in codes; None: no check-in here.
    scanner: Scanner | None = None

    def close(self) -> None:
        for name, part in (
            ("scanner", self.scanner),
            ("printer", self.printer),
            ("buttons", self.buttons),
            ("indicator", self.indicator),
        ):
            if part is None:
                continue
            try:
                part.close()
            except Exception:  # fail-safe: every part gets its close
                logger.exception("closing the %s failed", name)
