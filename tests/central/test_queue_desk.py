"""Central's queue desk: requests, events and staff operations in, replies and the board out.

The desk runs on a real engine and SQLite store; the publish function records what would go
to the broker.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from central.queue.settings import QueueSection
from central.queue_desk import QueueDesk
from entrada import protocol
from entrada.mqtt import Incoming
from entrada.protocol import Event, Topics
from entrada.protocol_queue import (
    CALL_SHOWN,
    TICKET_PRINTED,
    TICKET_VOIDED,
    LeaseReply,
    LeaseRequest,
    QueueBoard,
    QueueOp,
    TicketReply,
    TicketRequest,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
TOPICS = Topics("office")
QUEUE = {
    "site_name": "Office",
    "timezone": "Europe/Warsaw",
    "services": [
        {"id": "A", "name": "General", "prefix": "A", "first": 1, "last": 999},
        {"id": "B", "name": "Passports", "prefix": "B", "first": 1, "last": 99},
    ],
    "counters": [{"id": "c1", "name": "1", "services": {"A": 1, "B": 1}}],
}


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: bytes, **kw: Any) -> bool:
        self.messages.append((topic, payload, kw))
        return True

    def last(self, topic: str) -> bytes:
        return next(p for t, p, _ in reversed(self.messages) if t == topic)


@pytest.fixture
def desk(tmp_path: Path) -> QueueDesk:
    d = QueueDesk(QueueSection.model_validate(QUEUE), tmp_path, TOPICS)
    yield d
    d.close()


def request(device: str, message: protocol.Message) -> Incoming:
    return Incoming(TOPICS.device(device, "queue/req"), protocol.encode(message), 1, False)


def event(kind: str, data: dict[str, Any], n: int) -> Event:
    return Event(id=f"{n:032x}", stream="dispenser.x", seq=n, kind=kind, ts=NOW, data=data)


def issue(desk: QueueDesk, sent: Sent, request_id: str, service: str = "A") -> TicketReply:
    ask = TicketRequest(request_id=request_id, service=service, issued_at=NOW)
    desk.on_message(request("disp-1", ask), sent, NOW)
    return protocol.decode(TicketReply, sent.last(TOPICS.device("disp-1", "queue/res")))


def staff(desk: QueueDesk, op: str, op_id: str, **args: Any) -> Any:
    return desk.answer(QueueOp(op_id=op_id, op=op, args=args), NOW)


def test_a_ticket_request_is_numbered_and_held_until_printed(desk: QueueDesk) -> None:
    sent = Sent()
    first = issue(desk, sent, "r1")
    again = issue(desk, sent, "r1")  # a redelivered request gets the same ticket

    assert (first.ok, first.number, first.ticket_id) == (True, "A001", "2026-11-23:A:1")
    assert again.ticket_id == first.ticket_id
    staff(desk, "sign_in", "s1", counter="c1", staff="ann")
    assert staff(desk, "call_next", "n1", counter="c1").code == "queue.refused.nothing_waiting"

    desk.on_events("disp-1", [event(TICKET_PRINTED, {"ticket_id": first.ticket_id}, 1)], NOW)
    called = staff(desk, "call_next", "n2", counter="c1")
    assert called.ok and called.result["ticket"]["label"] == "A001"


def test_a_voided_number_goes_to_the_next_customer(desk: QueueDesk) -> None:
    sent = Sent()
    first = issue(desk, sent, "r1")
    desk.on_events(
        "disp-1", [event(TICKET_VOIDED, {"ticket_id": first.ticket_id, "reason": "x"}, 1)], NOW
    )
    assert issue(desk, sent, "r2").number == "A001"


def test_ahead_and_wait_come_from_the_queue_at_issue(desk: QueueDesk) -> None:
    sent = Sent()
    for n in range(3):
        reply = issue(desk, sent, f"r{n}")
        desk.on_events(
            "disp-1", [event(TICKET_PRINTED, {"ticket_id": reply.ticket_id}, n + 1)], NOW
        )
    assert issue(desk, sent, "r9").ahead == 3


def test_a_lease_is_granted_and_an_offline_ticket_joins_by_its_issue_time(
    desk: QueueDesk,
) -> None:
    sent = Sent()
    ask = LeaseRequest(request_id="l1", service="A", business_day="2026-11-23", size=10)
    desk.on_message(request("disp-1", ask), sent, NOW)
    lease = protocol.decode(LeaseReply, sent.last(TOPICS.device("disp-1", "queue/res")))
    online = issue(desk, sent, "r1")
    desk.on_events("disp-1", [event(TICKET_PRINTED, {"ticket_id": online.ticket_id}, 1)], NOW)
    offline = {
        "ticket_id": f"2026-11-23:A:{lease.first}",
        "offline": True,
        "issued_at": NOW - 60,  # issued before the online one, while cut off
    }
    desk.on_events("disp-1", [event(TICKET_PRINTED, offline, 2)], NOW)

    assert (lease.ok, lease.first, lease.last) == (True, 1, 10)
    assert online.number == "A011"  # the online numbering skips the leased block
    staff(desk, "sign_in", "s1", counter="c1", staff="ann")
    assert staff(desk, "call_next", "n1", counter="c1").result["ticket"]["label"] == "A001"


def test_the_board_is_retained_and_shows_calls_and_waits(desk: QueueDesk) -> None:
    sent = Sent()
    reply = issue(desk, sent, "r1")
    desk.on_events("disp-1", [event(TICKET_PRINTED, {"ticket_id": reply.ticket_id}, 1)], NOW)
    staff(desk, "sign_in", "s1", counter="c1", staff="ann")
    staff(desk, "call_next", "n1", counter="c1")
    desk.pump(sent, NOW, 1.0)

    _topic, payload, kw = next(m for m in reversed(sent.messages) if m[0].endswith("queue/board"))
    board = protocol.decode(QueueBoard, payload)
    assert kw["retain"] is True
    assert [(c.ticket, c.counter_name) for c in board.calls] == [("A001", "1")]
    assert {s.service: s.digits for s in board.services} == {"A": 3, "B": 2}
    assert board.business_day == "2026-11-23" and board.day_ends_at > NOW


def test_staff_cannot_send_the_operations_only_devices_cause(desk: QueueDesk) -> None:
    answer = staff(desk, "issue_ticket", "x1", service="A", dispenser="d", issued_at=NOW)
    assert (answer.ok, answer.code) == (False, "queue.refused.unknown_op")
    assert "call_next" in answer.result["known"]
    assert staff(desk, "call_next", "x2").code == "queue.refused.bad_request"


def test_a_call_no_board_confirmed_is_reported_once(
    desk: QueueDesk, caplog: pytest.LogCaptureFixture
) -> None:
    sent = Sent()
    for board in ("board-1", "board-2"):
        desk.display_status(board, "online", NOW - 60)
    reply = issue(desk, sent, "r1")
    desk.on_events("disp-1", [event(TICKET_PRINTED, {"ticket_id": reply.ticket_id}, 1)], NOW)
    staff(desk, "sign_in", "s1", counter="c1", staff="ann")
    call_id = staff(desk, "call_next", "n1", counter="c1").result["call"]["call_id"]
    desk.on_events("board-1", [event(CALL_SHOWN, {"call_id": call_id, "shown_at": NOW}, 9)], NOW)

    later = NOW + 120
    assert [u.call.call_id for u in desk.unconfirmed(later)] == [call_id]
    with caplog.at_level(logging.WARNING, logger="central.queue_desk"):
        desk.pump(sent, later, 100.0)
        desk.pump(sent, later, 200.0)
    lines = [r.getMessage() for r in caplog.records if "not confirmed" in r.getMessage()]
    assert lines == [f"call {call_id} (A001 to counter c1) not confirmed by board-2"]


def test_a_board_is_asked_only_for_the_calls_made_while_it_was_online(desk: QueueDesk) -> None:
    sent = Sent()
    desk.display_status("board-1", "online", NOW - 60)
    desk.display_status("board-late", "online", NOW + 10)  # joined after the call
    desk.display_status("board-gone", "online", NOW - 7200)
    desk.display_status("board-gone", "offline", NOW - 5000)  # retired long before
    reply = issue(desk, sent, "r1")
    desk.on_events("disp-1", [event(TICKET_PRINTED, {"ticket_id": reply.ticket_id}, 1)], NOW)
    staff(desk, "sign_in", "s1", counter="c1", staff="ann")
    staff(desk, "call_next", "n1", counter="c1")

    assert [u.missing for u in desk.unconfirmed(NOW + 120)] == [frozenset({"board-1"})]
