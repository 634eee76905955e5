"""Appointments: booking with a code, the check-in window, their place ahead of
walk-ins, and the automatic cancellation of those who never came."""

from __future__ import annotations

import pytest
from central_queue_rig import T0, Rig

from central.queue.appointments import new_checkin_code
from central.queue.codes import QueueCode
from central.queue.model import AppointmentState, Source, TicketKind, TicketState
from central.queue.ops import (
    BookAppointment,
    CallNext,
    CancelAppointment,
    CheckIn,
    FinishService,
    TicketPrinted,
    TicketVoided,
)

SLOT = T0 + 3 * 3600  # 12:00 local


def book(r: Rig, code: str = "123456", slot: float = SLOT, **kw) -> str:
    res = r(BookAppointment, service="reg", slot=slot, code=code, **kw)
    assert res.code is QueueCode.BOOKED and res.appointment is not None, res
    return res.appointment.id


def check_in(r: Rig, code: str = "123456", at: float | None = None):
    return r(CheckIn, code=code, dispenser="d1", issued_at=r.now if at is None else at)


def test_booking() -> None:
    r = Rig()
    aid = book(r, note="Mrs Smith")
    a = r.engine.appointment(aid)
    assert a is not None and a.state is AppointmentState.BOOKED and a.code == "123456"
    assert str(a.day) == "2026-03-10"
    assert book(r, code="222222", appointment_id="crm-17") == "crm-17"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"service": "x"}, QueueCode.UNKNOWN_SERVICE),
        ({"code": ""}, QueueCode.BAD_REQUEST),
        ({"code": "123456", "appointment_id": "other"}, QueueCode.DUPLICATE_CODE),
        ({"code": "999999", "appointment_id": "a1"}, QueueCode.DUPLICATE_APPOINTMENT),
        ({"code": "999999", "slot": T0 - 16 * 60}, QueueCode.TOO_LATE),
    ],
)
def test_booking_refusals(fields: dict, code: QueueCode) -> None:
    r = Rig()
    book(r, appointment_id="a1")
    op = {"service": "reg", "slot": SLOT, "code": "555555", **fields}
    assert r(BookAppointment, **op).code is code


@pytest.mark.parametrize(
    ("minutes", "code"),
    [
        (-61, QueueCode.TOO_EARLY),
        (-60, QueueCode.CHECKED_IN),
        (0, QueueCode.CHECKED_IN),
        (15, QueueCode.CHECKED_IN),
        (15.02, QueueCode.TOO_LATE),
    ],
)
def test_check_in_window(minutes: float, code: QueueCode) -> None:
    r = Rig()
    book(r)
    r.now = SLOT + minutes * 60
    res = check_in(r)
    assert res.code is code
    if res.ok:
        assert res.ticket is not None and res.ticket.state is TicketState.PRINTING
        assert res.ticket.source is Source.APPOINTMENT and res.ticket.kind is TicketKind.APPOINTMENT
        assert res.ticket.queue_at == SLOT  # queues by its slot
        assert res.appointment is not None and res.appointment.ticket_id == res.ticket.id


def test_check_in_refusals() -> None:
    r = Rig()
    aid = book(r)
    r.now = SLOT
    assert check_in(r, code="000000").code is QueueCode.UNKNOWN_CODE
    assert check_in(r).ok
    assert check_in(r).code is QueueCode.ALREADY_CHECKED_IN
    assert r(CancelAppointment, appointment_id=aid).code is QueueCode.ALREADY_CHECKED_IN
    other = book(r, code="777777")
    assert r(CancelAppointment, appointment_id=other).code is QueueCode.APPOINTMENT_CANCELLED
    assert check_in(r, code="777777").code is QueueCode.APPOINTMENT_CLOSED
    assert r(CancelAppointment, appointment_id="nope").code is QueueCode.UNKNOWN_APPOINTMENT


def test_a_failed_print_lets_the_appointment_check_in_again() -> None:
    r = Rig()
    aid = book(r)
    r.now = SLOT
    first = check_in(r)
    assert r(TicketVoided, ticket_id=first.ticket.id).ok  # type: ignore[union-attr]
    assert r.engine.appointment(aid).state is AppointmentState.BOOKED  # type: ignore[union-attr]
    again = check_in(r)
    assert again.ok and again.ticket.number == first.ticket.number  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "policy",
    [
        {"name": "fifo"},
        {"name": "priority_ratio", "ratio": "1:1", "cap": 1},
        {"name": "longest_wait"},
    ],
)
def test_checked_in_appointments_go_ahead_of_walk_ins(policy: dict) -> None:
    r = Rig(policy=policy)
    r.open("c1")
    late_slot = book(r, code="111111", slot=SLOT + 1800)
    early_slot = book(r, code="222222", slot=SLOT)
    walk_ins = [r.at(i * 60).walk_in("reg", priority=i % 2 == 0) for i in range(4)]
    r.now = SLOT - 1200
    for code in ("111111", "222222"):  # the later slot checks in first
        res = check_in(r, code)
        assert r(TicketPrinted, ticket_id=res.ticket.id).ok  # type: ignore[union-attr]
    r.now = SLOT
    order = []
    for _ in range(6):
        order.append(r(CallNext, counter="c1").ticket.id)  # type: ignore[union-attr]
        r(FinishService, counter="c1")
    tickets = {a: r.engine.appointment(a).ticket_id for a in (late_slot, early_slot)}  # type: ignore[union-attr]
    assert order[:2] == [tickets[early_slot], tickets[late_slot]]
    assert set(order[2:]) == set(walk_ins)


def test_tick_cancels_appointments_nobody_checked_in_for() -> None:
    r = Rig()
    missed = book(r, code="111111")
    kept = book(r, code="222222")
    later = book(r, code="333333", slot=SLOT + 3600)
    r.now = SLOT
    assert check_in(r, "222222").ok
    closes = SLOT + 15 * 60
    assert r.engine.tick(closes).changes == ()  # the window is still open
    result = r.engine.tick(closes + 1)
    assert result.code is QueueCode.TICKED
    assert [(c.KIND, c.key) for c in result.changes] == [("appointment", missed)]
    assert r.engine.appointment(missed).state is AppointmentState.NO_SHOW  # type: ignore[union-attr]
    assert r.engine.appointment(kept).state is AppointmentState.CHECKED_IN  # type: ignore[union-attr]
    assert r.engine.appointment(later).state is AppointmentState.BOOKED  # type: ignore[union-attr]
    assert r.engine.tick(closes + 2).changes == ()


def test_new_checkin_code() -> None:
    codes = {new_checkin_code() for _ in range(20)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 1
