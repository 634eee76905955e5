"""What the tests of central's queue front doors share (the API, test_api_queue.py, and
``entrada queue``, tests/entrada/test_cli_queue.py): a small office's ``[queue]``, the
clock both run at, and tickets issued and printed as a dispenser would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.queue.ops import IssueTicket, TicketPrinted
from central.service import CentralService

#: 2026-03-10 09:00 Europe/Warsaw, a Tuesday.
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC).timestamp()
WARSAW = ZoneInfo("Europe/Warsaw")
#: Registration (A) at counter 1, payments (B, 1-99) at counters 1 and 2.
QUEUE: dict[str, Any] = {
    "timezone": "Europe/Warsaw",
    "services": [
        {"id": "reg", "name": "Registration", "prefix": "A"},
        {"id": "pay", "name": "Payments", "prefix": "B", "last": 99},
    ],
    "counters": [
        {"id": "c1", "name": "Counter 1", "services": {"reg": 1.0, "pay": 1.0}},
        {"id": "c2", "name": "Counter 2", "services": {"pay": 1.0}},
    ],
}


def issue(service: CentralService, svc: str, count: int = 1) -> list[str]:
    """Tickets of ``svc`` issued and printed, as a dispenser would (on central's owner
    thread); their ids."""

    def run() -> list[str]:
        desk = service.desk
        assert desk is not None
        ids = []
        for _ in range(count):
            issued = desk.apply(
                IssueTicket(op_id=uuid.uuid4().hex, service=svc, dispenser="d1", issued_at=T0), T0
            )
            assert issued.ticket is not None
            desk.apply(TicketPrinted(op_id=uuid.uuid4().hex, ticket_id=issued.ticket.id), T0)
            ids.append(issued.ticket.id)
        return ids

    return service.on_owner(run)
