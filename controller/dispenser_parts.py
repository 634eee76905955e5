"""The dispenser's plain parts: its drivers, a request waiting for central, its counters,
and the face of its tickets."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from controller.roles.dispenser import wait_minutes
from drivers.buttons import Buttons
from drivers.outputs import Indicator
from drivers.printer import TicketPrinter, TicketSpec
from drivers.scanner import Scanner
from entrada.protocol_queue import QueueBoard
from kiosk_ui.words import ticket_labels

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


class TicketFace:
    """What a ticket says, from the dispenser's settings (site name, zone, language,
    status page) and the board central last published (service names)."""

    def __init__(self, section: Any) -> None:
        self.d = section
        self.zone = ZoneInfo(section.timezone)
        self.labels = ticket_labels(section.language)

    def site_name(self, board: QueueBoard | None) -> str:
        return str(self.d.site_name) or (board.site_name if board else "")

    def ticket(
        self,
        board: QueueBoard | None,
        service: str,
        number: str,
        issued_at: float,
        ahead: int,
        est_wait_s: int | None,
        ticket_id: str | None,
        footer: str = "",
    ) -> TicketSpec:
        line = next((s for s in board.services if s.service == service), None) if board else None
        url = (
            self.d.status_url.replace("{ticket}", ticket_id)
            if self.d.status_url and ticket_id
            else None
        )
        return TicketSpec(
            site_name=self.site_name(board),
            service_name=line.name if line is not None else service,
            number=number,
            issued_at=datetime.fromtimestamp(issued_at, self.zone),
            ahead=ahead,
            est_wait_minutes=wait_minutes(est_wait_s),
            qr_url=url,
            labels=self.labels,
            footer=footer,
        )
