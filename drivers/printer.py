"""What a queue-ticket printer can do, and the values that cross that surface.

A dispenser asks :meth:`TicketPrinter.status` before every ticket (the call is quick and
bounded by the driver's timeout) and only then takes a number and prints it; a print that
fails raises :class:`PrintError`, so the role can give the number back and report
``fault.printer_failed``. The ticket itself is a :class:`TicketSpec`: every word on it is
already translated by the caller (``labels``) and the time already converted to the
site's zone, so a driver holds no words and reads no clock of its own.

Implementations: :mod:`drivers.printer_escpos` (real ESC/POS printers through
python-escpos) and :mod:`drivers.printer_sim` (the same bytes into memory, with faults on
purpose). Both render through :mod:`drivers.ticket_escpos`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from entrada.codes import Fault
from entrada.errors import DriverError

#: The label keys a ticket needs (their values are the caller's translations).
LABEL_KEYS = frozenset({"ahead", "wait", "minutes", "issued", "scan"})
#: Longest QR payload: larger codes outgrow a 58 mm roll at a scannable module size.
MAX_QR_CHARS = 256
#: Faults that still let a ticket print.
NON_BLOCKING = frozenset({Fault.PRINTER_PAPER_LOW})


class PrintError(DriverError):
    """A ticket could not be printed (device gone, write failed, printer refused)."""


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer reported just now; ``faults`` holds ``entrada.codes.Fault`` values."""

    faults: frozenset[Fault] = frozenset()

    @property
    def ready(self) -> bool:
        """True when a ticket can print: no fault, or only ``PRINTER_PAPER_LOW``."""
        return self.faults <= NON_BLOCKING


@dataclass(frozen=True)
class TicketSpec:
    """One ticket, ready to print: numbers, site-local time and translated words."""

    site_name: str
    service_name: str
    #: The number called out, e.g. "A042".
    number: str
    #: When it was issued, site-local (converted by the caller); printed as ``time_format``.
    issued_at: datetime
    #: People in the queue before this ticket.
    ahead: int
    #: Estimated wait; None leaves the line out.
    est_wait_minutes: int | None
    #: Printed as a QR code; None prints none.
    qr_url: str | None
    #: Translations for the keys in :data:`LABEL_KEYS` (other keys are ignored).
    labels: Mapping[str, str]
    #: An optional last line (opening hours, a privacy note...).
    footer: str = ""
    #: strftime format of ``issued_at``; the default is unambiguous in every language.
    time_format: str = "%Y-%m-%d %H:%M"

    def __post_init__(self) -> None:
        missing = LABEL_KEYS - set(self.labels)
        if missing:
            raise ValueError(f"ticket labels lack {', '.join(sorted(missing))}")
        if not self.number.strip():
            raise ValueError("a ticket needs a number")
        if self.ahead < 0:
            raise ValueError(f"people ahead cannot be negative, got {self.ahead}")
        if self.est_wait_minutes is not None and self.est_wait_minutes < 0:
            raise ValueError(f"wait cannot be negative, got {self.est_wait_minutes}")
        if self.qr_url is not None and not 0 < len(self.qr_url) <= MAX_QR_CHARS:
            raise ValueError(f"qr_url must be 1 to {MAX_QR_CHARS} characters")
        # A read-only copy: the caller's dict may change after the ticket is made.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@runtime_checkable
class TicketPrinter(Protocol):
    name: str

    def status(self) -> PrinterStatus:
        """Ask the printer now; returns within the driver's timeout and never raises for a
        printer that is away (that is ``PRINTER_OFFLINE``)."""

    def print_ticket(self, ticket: TicketSpec) -> None:
        """Print and cut one ticket; raises :class:`PrintError` on any failure."""

    def close(self) -> None:
        """Release the device; safe to call twice."""
