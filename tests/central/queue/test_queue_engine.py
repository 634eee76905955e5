"""Every engine operation that works: what it does (every refusal, with its code, is in
test_queue_engine_refusals.py)."""

from __future__ import annotations

import pytest
from central_queue_rig import DAY, T0, Rig, call_one, state_of

from central.queue.codes import QueueCode
from central.queue.model import Outcome, TicketState
from central.queue.ops import (
    CallNext,
    CallTicket,
    Cancel,
    ConfirmCall,
    FinishService,
    IssueTicket,
    LeaseBlock,
    NoShow,
    Park,
    Recall,
    Resume,
    SignIn,
    SignOut,
    StartService,
    TicketPrinted,
    Transfer,
    op_from_plain,
)

# ------------------------------------------------------------------------ it works


def test_issue_print_call_start_finish() -> None:
    r = Rig()
    r.open("c1")
    issued = r(IssueTicket, service="reg", dispenser="d1", issued_at=T0, request_id="q1")
    assert issued.code is QueueCode.ISSUED and issued.ticket is not None
    t = issued.ticket
    assert (t.id, t.label, t.state) == ("2026-03-10:reg:1", "A001", TicketState.PRINTING)
    assert r(TicketPrinted, ticket_id=t.id).code is QueueCode.PRINTED

    called = r.at(60)(CallNext, counter="c1")
    assert called.code is QueueCode.CALLED and called.call is not None
    assert called.call.call_id == f"{t.id}#1" and called.call.recall == 0
    assert r.engine.counter("c1").current == t.id  # type: ignore[union-attr]

    assert r.at(90)(StartService, counter="c1", ticket_id=t.id).code is QueueCode.STARTED
    finished = r.at(390)(FinishService, counter="c1")
    assert finished.code is QueueCode.FINISHED and finished.ticket is not None
    assert finished.ticket.state is TicketState.DONE
    assert r.engine.counter("c1").current is None  # type: ignore[union-attr]
    (visit,) = r.engine.visits()
    assert (visit.queued_at, visit.called_at, visit.started_at, visit.ended_at) == (
        T0,
        T0 + 60,
        T0 + 90,
        T0 + 390,
    )
    assert visit.outcome is Outcome.FINISHED and visit.staff == "staff-c1"


def test_labels_are_padded_to_the_range() -> None:
    r = Rig()
    assert r.engine.ticket(r.walk_in("pay")).label == "B01"  # type: ignore[union-attr]
    assert r.engine.ticket(r.walk_in("small")).label == "C1"  # type: ignore[union-attr]


def test_recalls_are_counted_then_a_no_show() -> None:
    r = Rig()  # max_recalls 2
    tid = call_one(r)
    first = r(Recall, counter="c1")
    second = r(Recall, counter="c1")
    assert [first.code, second.code] == [QueueCode.RECALLED, QueueCode.RECALLED]
    assert second.call is not None and second.call.call_id == f"{tid}#3"
    assert second.call.recall == 2
    third = r(Recall, counter="c1")
    assert third.code is QueueCode.NO_SHOW_RECALLS
    assert third.ticket is not None and third.ticket.state is TicketState.NO_SHOW
    assert r.engine.counter("c1").current is None  # type: ignore[union-attr]
    assert r.engine.visits()[0].recalls == 2


def test_no_show_frees_the_counter() -> None:
    r = Rig()
    call_one(r)
    res = r(NoShow, counter="c1")
    assert res.code is QueueCode.NO_SHOW
    assert r.engine.visits()[0].outcome is Outcome.NO_SHOW
    assert r(CallNext, counter="c1").code is QueueCode.NOTHING_WAITING


def test_finish_without_start_counts_service_from_the_call() -> None:
    r = Rig()
    call_one(r)
    r.at(200)(FinishService, counter="c1")
    (visit,) = r.engine.visits()
    assert visit.started_at == T0 and visit.ended_at == T0 + 200


def test_transfer_to_a_service_keeps_the_place_in_time() -> None:
    r = Rig()
    r.open("c1", "c2")
    first = r.walk_in("reg")
    later = r.at(100).walk_in("pay")
    assert r.at(200)(CallNext, counter="c1").ticket.id == first  # type: ignore[union-attr]
    moved = r.at(300)(Transfer, ticket_id=first, to_service="pay")
    assert moved.code is QueueCode.TRANSFERRED and moved.ticket is not None
    assert moved.ticket.service == "pay" and moved.ticket.queue_at == T0
    assert moved.ticket.label == "A001"  # what the customer holds never changes
    assert r.engine.counter("c1").current is None  # type: ignore[union-attr]
    # the transferred customer goes before the later payment ticket
    assert r.at(400)(CallNext, counter="c2").ticket.id == first  # type: ignore[union-attr]
    assert r(FinishService, counter="c2").ok
    assert r(CallNext, counter="c2").ticket.id == later  # type: ignore[union-attr]
    visits = sorted(v.key for v in r.engine.visits() if v.ticket_id == first)
    assert visits == [f"{first}/1", f"{first}/2"]
    outcomes = {v.key: v.outcome for v in r.engine.visits()}
    assert outcomes[f"{first}/1"] is Outcome.TRANSFERRED
    assert r.engine.visits()[-1].queued_at == T0 + 300  # the second visit waits from then


def test_transfer_to_a_counter_only_that_counter_calls_it() -> None:
    r = Rig()
    r.open("c1", "c3")
    tid = r.walk_in("reg")
    assert r(Transfer, ticket_id=tid, to_counter="c2").ok
    assert r(CallNext, counter="c1").code is QueueCode.NOTHING_WAITING
    assert r(CallNext, counter="c3").code is QueueCode.NOTHING_WAITING
    r.open("c2")  # c2 does not serve reg, but the ticket was sent to it
    assert [c.ticket_id for c in r.engine.candidates("c2")] == [tid]
    assert r(CallNext, counter="c2").ticket.id == tid  # type: ignore[union-attr]


def test_park_and_resume_back_to_the_same_counter() -> None:
    r = Rig()
    r.open("c3")
    tid = call_one(r)
    parked = r(Park, ticket_id=tid)
    assert parked.code is QueueCode.PARKED
    assert r.engine.counter("c1").current is None  # type: ignore[union-attr]
    assert r(CallNext, counter="c1").code is QueueCode.NOTHING_WAITING
    resumed = r(Resume, ticket_id=tid)
    assert resumed.code is QueueCode.RESUMED and resumed.ticket is not None
    assert resumed.ticket.for_counter == "c1"
    assert r(CallNext, counter="c3").code is QueueCode.NOTHING_WAITING
    again = r(CallNext, counter="c1")
    assert again.call is not None and again.call.call_id == f"{tid}#2"


def test_a_parked_ticket_can_be_called_by_hand() -> None:
    r = Rig()
    r.open("c1")
    tid = r.walk_in()
    assert r(Park, ticket_id=tid).ok
    assert r(CallTicket, counter="c1", ticket_id=tid).code is QueueCode.CALLED


def test_cancel_a_called_ticket_frees_its_counter() -> None:
    r = Rig()
    tid = call_one(r)
    res = r(Cancel, ticket_id=tid, reason="left")
    assert res.code is QueueCode.CANCELLED and res.ticket is not None
    assert res.ticket.note == "left"
    assert r.engine.counter("c1").current is None  # type: ignore[union-attr]


def test_call_ticket_out_of_order() -> None:
    r = Rig()
    r.open("c1")
    r.walk_in()
    second = r.walk_in()
    res = r(CallTicket, counter="c1", ticket_id=second)
    assert res.code is QueueCode.CALLED and res.ticket.id == second  # type: ignore[union-attr]


def test_sign_in_again_and_out() -> None:
    r = Rig()
    assert r(SignIn, counter="c1", staff="ann").code is QueueCode.SIGNED_IN
    again = r(SignIn, counter="c1", staff="ann")
    assert again.ok and again.changes == ()
    assert r(SignOut, counter="c1").code is QueueCode.SIGNED_OUT
    assert not r.engine.counter("c1").open  # type: ignore[union-attr]


# ------------------------------------------------------------------- idempotency


def test_a_repeated_op_id_returns_the_first_result_and_does_nothing() -> None:
    r = Rig()
    r.open("c1")
    refused = r(CallNext, counter="c1", op_id="press-1")
    assert refused.code is QueueCode.NOTHING_WAITING
    tid = r.walk_in()
    before = state_of(r.engine)
    again = r(CallNext, counter="c1", op_id="press-1")
    assert again.duplicate and again.changes == ()
    assert (again.ok, again.code, again.at) == (refused.ok, refused.code, refused.at)
    assert state_of(r.engine) == before
    called = r(CallNext, counter="c1", op_id="press-2")
    assert called.ticket.id == tid  # type: ignore[union-attr]
    assert r(CallNext, counter="c1", op_id="press-2").ticket == called.ticket


def test_remembered_op_ids_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from central.queue import engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_REMEMBERED_OPS", 3)
    r = Rig()
    for i in range(5):
        r(SignIn, counter="c1", staff="ann", op_id=f"s{i}")
    assert r.engine.remembered("s0") is None and r.engine.remembered("s4") is not None


def test_op_ids_of_the_day_before_yesterday_are_forgotten() -> None:
    r = Rig()
    r(SignIn, counter="c1", staff="ann", op_id="monday")
    r.at(86_400)(SignOut, counter="c1", op_id="tuesday")
    assert r.engine.remembered("monday") is not None  # yesterday's are kept
    r.at(2 * 86_400).engine.tick(r.now)
    assert r.engine.remembered("monday") is None
    assert r.engine.remembered("tuesday") is not None


# ---------------------------------------------------------------- calls and boards


def test_confirmations_and_unconfirmed_calls() -> None:
    r = Rig()
    tid = call_one(r)
    call_id = f"{tid}#1"
    assert r.at(1)(ConfirmCall, call_id=call_id, display="b1", shown_at=r.now).ok
    r.at(5)
    (late,) = r.engine.unconfirmed_calls({"b1", "b2"}, older_than=r.now - 3)
    assert late.call.call_id == call_id and late.missing == {"b2"}
    assert r.engine.unconfirmed_calls({"b1", "b2"}, older_than=T0 - 1) == []
    assert r(ConfirmCall, call_id=call_id, display="b2", shown_at=r.now).ok
    assert r.engine.unconfirmed_calls({"b1", "b2"}, older_than=r.now) == []
    again = r(ConfirmCall, call_id=call_id, display="b2", shown_at=r.now + 1)
    assert again.ok and again.changes == ()  # the first showing stands


def test_board() -> None:
    r = Rig()
    r.open("c1", "c2")
    for i in range(4):
        r.at(i).walk_in("reg")
    r.walk_in("pay")
    r.at(10)(CallNext, counter="c1")
    r.at(11)(CallNext, counter="c2")
    r.at(12)(Recall, counter="c2")
    board = r.engine.board(r.now, recent=2)
    assert board.day == DAY and board.open_counters == ("c1", "c2")
    assert [(c.counter, c.label, c.recalls) for c in board.current] == [
        ("c1", "A001", 0),
        ("c2", "B01", 1),
    ]
    assert board.current[1].call_id.endswith("#2")
    assert [c.call_id for c in board.recent] == ["2026-03-10:pay:1#2", "2026-03-10:pay:1#1"]
    loads = {s.service: s for s in board.services}
    assert loads["reg"].waiting == 3 and loads["pay"].waiting == 0
    assert loads["reg"].estimated_wait == 900  # 3 ahead, c1 at 1/300 s
    assert loads["small"].estimated_wait is None  # no counter serves it


def test_ticket_status() -> None:
    r = Rig()
    r.open("c3")
    first, second, third = (r.at(i).walk_in() for i in range(3))
    status = r.engine.ticket_status(third, r.now)
    assert status is not None and (status.ahead, status.estimated_wait) == (2, 600)
    r(CallNext, counter="c3")
    called = r.engine.ticket_status(first, r.now)
    assert called is not None and called.counter == "c3" and called.ahead is None
    assert called.call_id == f"{first}#1"
    assert r.engine.ticket_status(second, r.now).ahead == 0  # type: ignore[union-attr]
    assert r.engine.ticket_status("nope", r.now) is None


# ----------------------------------------------------------------- business days


def test_a_new_business_day_restarts_numbers_and_expires_the_old_queue() -> None:
    r = Rig()
    old = r.walk_in()
    tomorrow = r.at(86_400)(IssueTicket, service="reg", dispenser="d1", issued_at=r.now)
    assert tomorrow.ticket is not None and tomorrow.ticket.label == "A001"
    assert tomorrow.ticket.id == "2026-03-11:reg:1"
    assert r.engine.ticket(old).state is TicketState.EXPIRED  # type: ignore[union-attr]
    assert {c.KIND for c in tomorrow.changes} >= {"daymark", "ticket", "visit", "pool"}
    r.at(2 * 86_400).engine.tick(r.now)
    assert r.engine.ticket(old) is None  # forgotten from the day before yesterday


def test_a_ticket_at_a_counter_survives_the_night() -> None:
    r = Rig()
    tid = call_one(r)
    r.at(86_400).engine.tick(r.now)
    assert r.engine.ticket(tid).state is TicketState.CALLED  # type: ignore[union-attr]
    assert r(FinishService, counter="c1").ok


def test_ops_from_plain_data() -> None:
    op = op_from_plain(
        "lease_block",
        {
            "op_id": "x",
            "dispenser": "d1",
            "service": "reg",
            "business_day": "2026-03-10",
            "size": 5,
        },
    )
    assert op == LeaseBlock(op_id="x", dispenser="d1", service="reg", business_day=DAY, size=5)
