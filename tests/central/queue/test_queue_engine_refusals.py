"""Every refusal of the queue engine, with its code, as one table: each case sets the
engine up, then one operation must be refused and change nothing (the operations that
work are in test_queue_engine.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from central_queue_rig import DAY, Rig, call_one, state_of

from central.queue.codes import QueueCode
from central.queue.ops import (
    CallNext,
    CallTicket,
    Cancel,
    ConfirmCall,
    FinishService,
    IssueTicket,
    LeaseBlock,
    NoShow,
    Op,
    Park,
    Recall,
    RegisterTicket,
    Resume,
    SignIn,
    SignOut,
    StartService,
    TicketPrinted,
    TicketVoided,
    Transfer,
)

Setup = Callable[[Rig], tuple[type[Op], dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    code: QueueCode


def _serving(r: Rig) -> str:
    tid = call_one(r)
    assert r(StartService, counter="c1").ok
    return tid


def _printing(r: Rig) -> str:
    res = r(IssueTicket, service="reg", dispenser="d1", issued_at=r.now)
    assert res.ticket is not None
    return res.ticket.id


def _done(r: Rig) -> str:
    tid = call_one(r)
    assert r(FinishService, counter="c1").ok
    return tid


def _exhaust_small(r: Rig) -> tuple[type[Op], dict[str, Any]]:
    for _ in range(5):
        r.walk_in("small")
    return IssueTicket, {"service": "small", "dispenser": "d1", "issued_at": r.now}


def _kept_for_c2(r: Rig) -> tuple[type[Op], dict[str, Any]]:
    r.open("c1")
    tid = r.walk_in()
    assert r(Transfer, ticket_id=tid, to_counter="c2").ok
    return CallTicket, {"counter": "c1", "ticket_id": tid}


def _duplicate_registration(r: Rig) -> tuple[type[Op], dict[str, Any]]:
    lease = r(LeaseBlock, dispenser="d1", service="reg", business_day=DAY, size=10).lease
    assert lease is not None
    assert r(RegisterTicket, service="reg", number=lease.first, dispenser="d1", issued_at=r.now).ok
    return RegisterTicket, {
        "service": "reg",
        "number": lease.first,
        "dispenser": "d2",
        "issued_at": r.now + 5,
    }


def _twice(r: Rig, cls: type[Op]) -> tuple[type[Op], dict[str, Any]]:
    tid = r.walk_in()
    assert r(cls, ticket_id=tid).ok
    return cls, {"ticket_id": tid}


CASES = [
    # numbering
    Case(
        "issue, unknown service",
        lambda r: (IssueTicket, {"service": "x", "dispenser": "d1", "issued_at": r.now}),
        QueueCode.UNKNOWN_SERVICE,
    ),
    Case("issue, range used up", _exhaust_small, QueueCode.RANGE_EXHAUSTED),
    Case(
        "printed, unknown ticket",
        lambda r: (TicketPrinted, {"ticket_id": "nope"}),
        QueueCode.UNKNOWN_TICKET,
    ),
    Case(
        "printed twice",
        lambda r: (TicketPrinted, {"ticket_id": r.walk_in()}),
        QueueCode.NOT_PRINTING,
    ),
    Case(
        "voided after printing",
        lambda r: (TicketVoided, {"ticket_id": r.walk_in()}),
        QueueCode.NOT_PRINTING,
    ),
    Case(
        "lease, unknown service",
        lambda r: (LeaseBlock, {"dispenser": "d1", "service": "x", "business_day": DAY}),
        QueueCode.UNKNOWN_SERVICE,
    ),
    Case(
        "lease, empty block",
        lambda r: (
            LeaseBlock,
            {"dispenser": "d1", "service": "reg", "business_day": DAY, "size": 0},
        ),
        QueueCode.BAD_REQUEST,
    ),
    Case(
        "lease, a day that is over",
        lambda r: (
            LeaseBlock,
            {"dispenser": "d1", "service": "reg", "business_day": DAY.replace(day=9)},
        ),
        QueueCode.DAY_CLOSED,
    ),
    Case(
        "register, not leased",
        lambda r: (
            RegisterTicket,
            {"service": "reg", "number": 7, "dispenser": "d1", "issued_at": r.now},
        ),
        QueueCode.NOT_LEASED,
    ),
    Case("register, number already held", _duplicate_registration, QueueCode.DUPLICATE_NUMBER),
    # counters
    Case(
        "sign in, unknown counter",
        lambda r: (SignIn, {"counter": "c9", "staff": "ann"}),
        QueueCode.UNKNOWN_COUNTER,
    ),
    Case(
        "sign in, nobody", lambda r: (SignIn, {"counter": "c1", "staff": ""}), QueueCode.BAD_REQUEST
    ),
    Case(
        "sign in, counter taken",
        lambda r: (r.open("c1"), (SignIn, {"counter": "c1", "staff": "bob"}))[1],
        QueueCode.COUNTER_TAKEN,
    ),
    Case(
        "sign in, staff elsewhere",
        lambda r: (r.open("c1"), (SignIn, {"counter": "c2", "staff": "staff-c1"}))[1],
        QueueCode.STAFF_ELSEWHERE,
    ),
    Case("sign out, closed", lambda r: (SignOut, {"counter": "c1"}), QueueCode.COUNTER_CLOSED),
    Case(
        "sign out, ticket called",
        lambda r: (call_one(r), (SignOut, {"counter": "c1"}))[1],
        QueueCode.COUNTER_BUSY,
    ),
    # calling
    Case(
        "call next, closed counter",
        lambda r: (r.walk_in(), (CallNext, {"counter": "c1"}))[1],
        QueueCode.COUNTER_CLOSED,
    ),
    Case(
        "call next, unknown counter",
        lambda r: (CallNext, {"counter": "c9"}),
        QueueCode.UNKNOWN_COUNTER,
    ),
    Case(
        "call next, counter busy",
        lambda r: (call_one(r), r.walk_in(), (CallNext, {"counter": "c1"}))[2],
        QueueCode.COUNTER_BUSY,
    ),
    Case(
        "call next, nothing waiting",
        lambda r: (r.open("c1"), (CallNext, {"counter": "c1"}))[1],
        QueueCode.NOTHING_WAITING,
    ),
    Case(
        "call next, only a ticket printing",
        lambda r: (r.open("c1"), _printing(r), (CallNext, {"counter": "c1"}))[2],
        QueueCode.NOTHING_WAITING,
    ),
    Case(
        "call next, only other services",
        lambda r: (r.open("c2"), r.walk_in("reg"), (CallNext, {"counter": "c2"}))[2],
        QueueCode.NOTHING_WAITING,
    ),
    Case(
        "call ticket, unknown",
        lambda r: (r.open("c1"), (CallTicket, {"counter": "c1", "ticket_id": "nope"}))[1],
        QueueCode.UNKNOWN_TICKET,
    ),
    Case(
        "call ticket, printing",
        lambda r: (r.open("c1"), (CallTicket, {"counter": "c1", "ticket_id": _printing(r)}))[1],
        QueueCode.NOT_PRINTED,
    ),
    Case(
        "call ticket, called elsewhere",
        lambda r: (r.open("c3"), (CallTicket, {"counter": "c3", "ticket_id": call_one(r)}))[1],
        QueueCode.NOT_WAITING,
    ),
    Case("call ticket, kept for another counter", _kept_for_c2, QueueCode.OTHER_COUNTER),
    Case(
        "call ticket, served already",
        lambda r: (CallTicket, {"counter": "c1", "ticket_id": _done(r)}),
        QueueCode.TICKET_CLOSED,
    ),
    Case(
        "recall, nothing called",
        lambda r: (r.open("c1"), (Recall, {"counter": "c1"}))[1],
        QueueCode.NOT_CALLED,
    ),
    Case(
        "recall, in service",
        lambda r: (_serving(r), (Recall, {"counter": "c1"}))[1],
        QueueCode.IN_SERVICE,
    ),
    # serving
    Case(
        "start, nothing called",
        lambda r: (r.open("c1"), (StartService, {"counter": "c1"}))[1],
        QueueCode.NOT_CALLED,
    ),
    Case(
        "start twice",
        lambda r: (_serving(r), (StartService, {"counter": "c1"}))[1],
        QueueCode.IN_SERVICE,
    ),
    Case(
        "finish a ticket never called",
        lambda r: (call_one(r), (FinishService, {"counter": "c1", "ticket_id": r.walk_in()}))[1],
        QueueCode.NOT_CALLED,
    ),
    Case(
        "finish, nothing called",
        lambda r: (r.open("c1"), (FinishService, {"counter": "c1"}))[1],
        QueueCode.NOT_CALLED,
    ),
    Case(
        "finish, unknown ticket",
        lambda r: (call_one(r), (FinishService, {"counter": "c1", "ticket_id": "nope"}))[1],
        QueueCode.UNKNOWN_TICKET,
    ),
    Case(
        "finish at a closed counter",
        lambda r: (FinishService, {"counter": "c2"}),
        QueueCode.COUNTER_CLOSED,
    ),
    Case(
        "no-show, in service",
        lambda r: (_serving(r), (NoShow, {"counter": "c1"}))[1],
        QueueCode.IN_SERVICE,
    ),
    # moving
    Case(
        "transfer, no target",
        lambda r: (Transfer, {"ticket_id": r.walk_in()}),
        QueueCode.BAD_REQUEST,
    ),
    Case(
        "transfer, unknown service",
        lambda r: (Transfer, {"ticket_id": r.walk_in(), "to_service": "x"}),
        QueueCode.UNKNOWN_SERVICE,
    ),
    Case(
        "transfer, unknown counter",
        lambda r: (Transfer, {"ticket_id": r.walk_in(), "to_counter": "c9"}),
        QueueCode.UNKNOWN_COUNTER,
    ),
    Case(
        "transfer, served already",
        lambda r: (Transfer, {"ticket_id": _done(r), "to_service": "pay"}),
        QueueCode.TICKET_CLOSED,
    ),
    Case("park twice", lambda r: _twice(r, Park), QueueCode.ALREADY_PARKED),
    Case(
        "resume, not parked", lambda r: (Resume, {"ticket_id": r.walk_in()}), QueueCode.NOT_PARKED
    ),
    Case(
        "cancel, still printing",
        lambda r: (Cancel, {"ticket_id": _printing(r)}),
        QueueCode.NOT_PRINTED,
    ),
    Case("cancel twice", lambda r: _twice(r, Cancel), QueueCode.TICKET_CLOSED),
    # displays
    Case(
        "confirm, unknown call",
        lambda r: (ConfirmCall, {"call_id": "x#1", "display": "b1", "shown_at": r.now}),
        QueueCode.UNKNOWN_CALL,
    ),
    Case(
        "confirm, no display",
        lambda r: (ConfirmCall, {"call_id": f"{call_one(r)}#1", "display": "", "shown_at": r.now}),
        QueueCode.BAD_REQUEST,
    ),
    # the op itself
    Case("no op id", lambda r: (CallNext, {"counter": "c1", "op_id": ""}), QueueCode.BAD_REQUEST),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refusals(case: Case) -> None:
    rig = Rig()
    cls, fields = case.setup(rig)
    rig.engine.tick(rig.now)  # the day mark exists: a refusal then changes nothing
    before = state_of(rig.engine)

    result = rig(cls, **fields)

    assert (result.ok, result.code) == (False, case.code), result.detail
    if case.code is QueueCode.DUPLICATE_NUMBER:
        assert [c.KIND for c in result.changes] == ["duplicate"]  # refused, and counted
    else:
        assert result.changes == ()
        assert state_of(rig.engine) == before
