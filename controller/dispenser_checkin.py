"""Appointment check-in at a dispenser: what a scanned code is, and what central's answer
means for the customer (the runtime, controller/dispenser_runtime.py, does the rest).

A customer with an appointment holds its check-in code (printed, or a QR on a phone) under
the dispenser's scanner (``drivers.scanner``); the scanner's thread enqueues a
:class:`Scan`, taken in turn with the presses. Only central can tell a good code from a
bad one, so a check-in is a :class:`~entrada.protocol_queue.TicketRequest` with
``checkin_code`` (its ``service`` a placeholder, the first of ``dispenser.buttons``: the
appointment decides, and central answers with its service). The ticket that comes back
prints like any other and is confirmed (``queue.ticket_printed``) or given back
(``queue.ticket_voided``) by the same events. Central's refusals are outcomes of their
own (:data:`CHECKIN_REFUSALS`). Without central (not in contact, or no answer within
``dispenser.request_timeout``) the scan is refused, ``ticket.refused.checkin_offline``,
and never takes a leased number; a late answer is given back like a press's.

Scanners re-read a code held under them: the same code again within
:data:`SCAN_DEBOUNCE` is the same scan (:func:`same_scan`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from entrada.codes import TicketOutcome

#: The same code scanned again within this time is the same scan, s.
SCAN_DEBOUNCE = 3.0
#: What central takes as a check-in code (``TicketRequest.checkin_code``).
CHECKIN_CODE = re.compile(r"[0-9A-Z]{4,12}")
#: Central's refusals of a check-in, as the dispenser's outcomes; others are ``REFUSED``.
CHECKIN_REFUSALS: dict[str, TicketOutcome] = {
    "queue.refused.too_early": TicketOutcome.CHECKIN_TOO_EARLY,
    "queue.refused.too_late": TicketOutcome.CHECKIN_TOO_LATE,
    "queue.refused.unknown_code": TicketOutcome.CHECKIN_UNKNOWN,
    "queue.refused.already_checked_in": TicketOutcome.CHECKIN_USED,
    "queue.refused.appointment_closed": TicketOutcome.CHECKIN_CLOSED,
}


@dataclass(frozen=True)
class Scan:
    """A code read by the check-in scanner; ``at`` is the monotonic time of the read."""

    code: str
    at: float


def is_checkin_code(code: str) -> bool:
    """Whether central could know ``code`` (anything else is refused without asking)."""
    return CHECKIN_CODE.fullmatch(code) is not None


def same_scan(last: Scan | None, scan: Scan) -> bool:
    """``scan`` is a re-read of ``last``: the same code within :data:`SCAN_DEBOUNCE`."""
    return last is not None and last.code == scan.code and scan.at - last.at < SCAN_DEBOUNCE


def refusal(code: str) -> TicketOutcome:
    """The outcome shown for central's refusal ``code`` of a check-in."""
    return CHECKIN_REFUSALS.get(code, TicketOutcome.REFUSED)
