"""Ticket numbers: online issues, voided prints, leased blocks and offline registrations
never hand one number to two tickets."""

from __future__ import annotations

from datetime import timedelta

from central_queue_rig import DAY, T0, Rig
from hypothesis import given, settings
from hypothesis import strategies as st

from central.queue.codes import QueueCode
from central.queue.model import Source, TicketState
from central.queue.ops import (
    CallNext,
    IssueTicket,
    LeaseBlock,
    RegisterTicket,
    TicketPrinted,
    TicketVoided,
)


def issue(r: Rig, service: str = "reg") -> str:
    res = r(IssueTicket, service=service, dispenser="d1", issued_at=r.now)
    assert res.ok and res.ticket is not None, res
    return res.ticket.id


def number(tid: str) -> int:
    return int(tid.rsplit(":", 1)[1])


def test_a_voided_print_gives_its_number_back_first() -> None:
    r = Rig()
    a, b, c = issue(r), issue(r), issue(r)
    assert r(TicketVoided, ticket_id=c, reason="paper out").code is QueueCode.VOIDED
    assert r(TicketVoided, ticket_id=a).ok
    assert [number(issue(r)), number(issue(r)), number(issue(r))] == [1, 3, 4]
    assert r.engine.ticket(b).state is TicketState.PRINTING  # type: ignore[union-attr]


def test_online_issuing_skips_leased_blocks() -> None:
    r = Rig()
    assert number(issue(r)) == 1
    block = r(LeaseBlock, dispenser="d7", service="reg", business_day=DAY, size=10)
    assert block.code is QueueCode.LEASED and block.lease is not None
    assert (block.lease.first, block.lease.last, block.lease.dispenser) == (2, 11, "d7")
    assert number(issue(r)) == 12
    second = r(LeaseBlock, dispenser="d7", service="reg", business_day=DAY)
    assert second.lease is not None and second.lease.first == 13
    assert second.lease.last == 62  # lease_size 50 by default


def test_leasing_tomorrow_in_advance() -> None:
    r = Rig()
    tomorrow = DAY + timedelta(days=1)
    block = r(LeaseBlock, dispenser="d1", service="reg", business_day=tomorrow, size=20)
    assert block.lease is not None and (block.lease.first, block.lease.last) == (1, 20)
    assert number(issue(r)) == 1  # today is untouched
    r.at(86_400)
    assert issue(r) == "2026-03-11:reg:21"


def test_a_lease_takes_what_is_left_then_the_range_is_used_up() -> None:
    r = Rig()
    issue(r, "small")
    block = r(LeaseBlock, dispenser="d1", service="small", business_day=DAY, size=10)
    assert block.lease is not None and (block.lease.first, block.lease.last) == (2, 5)
    again = r(LeaseBlock, dispenser="d1", service="small", business_day=DAY, size=1)
    assert again.code is QueueCode.RANGE_EXHAUSTED
    refused = r(IssueTicket, service="small", dispenser="d1", issued_at=r.now)
    assert refused.code is QueueCode.RANGE_EXHAUSTED


def test_offline_tickets_queue_by_their_issue_time() -> None:
    r = Rig()
    r.open("c3")
    r(LeaseBlock, dispenser="d2", service="reg", business_day=DAY, size=5)
    online = r.at(100).walk_in()  # number 6, issued at +100
    offline = r.at(300)(RegisterTicket, service="reg", number=3, dispenser="d2", issued_at=T0 + 50)
    assert offline.code is QueueCode.REGISTERED and offline.ticket is not None
    assert offline.ticket.source is Source.OFFLINE and offline.ticket.label == "A003"
    assert offline.ticket.state is TicketState.WAITING  # printed by the dispenser already
    assert r(CallNext, counter="c3").ticket.id == offline.ticket.id  # type: ignore[union-attr]
    assert [c.ticket_id for c in r.engine.candidates("c3")] == [online]


def test_registering_again_is_harmless_and_a_second_holder_is_counted() -> None:
    r = Rig()
    r(LeaseBlock, dispenser="d2", service="reg", business_day=DAY, size=5)
    first = r(RegisterTicket, service="reg", number=2, dispenser="d2", issued_at=T0 + 1)
    again = r(RegisterTicket, service="reg", number=2, dispenser="d2", issued_at=T0 + 1)
    assert again.ok and again.code is QueueCode.REGISTERED and again.changes == ()
    assert again.ticket == first.ticket
    clash = r(RegisterTicket, service="reg", number=2, dispenser="d3", issued_at=T0 + 9)
    assert clash.code is QueueCode.DUPLICATE_NUMBER
    (dup,) = r.engine.duplicate_numbers(DAY)
    assert (dup.number, dup.dispenser, dup.holder) == (2, "d3", first.ticket.id)  # type: ignore[union-attr]


def test_registering_after_the_day_ended() -> None:
    r = Rig()
    r(LeaseBlock, dispenser="d2", service="reg", business_day=DAY, size=5)
    late = r.at(86_400)(RegisterTicket, service="reg", number=1, dispenser="d2", issued_at=T0 + 60)
    assert late.ok and late.ticket is not None
    assert late.ticket.state is TicketState.EXPIRED  # counted, never called
    r.at(2 * 86_400)
    too_late = r(RegisterTicket, service="reg", number=2, dispenser="d2", issued_at=T0 + 70)
    assert too_late.code is QueueCode.DAY_CLOSED


# ----------------------------------------------------------- random interleavings

DISPENSERS = ["d1", "d2", "d3"]
SERVICES = ["small", "pay"]
action = st.one_of(
    st.tuples(st.just("issue"), st.sampled_from(SERVICES)),
    st.tuples(st.just("print"), st.integers(0, 50)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(
        st.just("lease"), st.sampled_from(DISPENSERS), st.sampled_from(SERVICES), st.integers(1, 8)
    ),
    st.tuples(
        st.just("register"),
        st.sampled_from(DISPENSERS),
        st.sampled_from(SERVICES),
        st.integers(1, 40),
    ),
    st.tuples(st.just("replay"), st.integers(0, 200)),
)


@given(actions=st.lists(action, max_size=80))
@settings(max_examples=150, deadline=None)
def test_no_number_is_ever_held_twice(actions: list[tuple]) -> None:
    r = Rig()
    online: dict[tuple[str, int], str] = {}  # live online numbers -> ticket id
    leased: dict[tuple[str, int], str] = {}  # every leased number -> dispenser
    registered: set[tuple[str, int]] = set()
    for act in actions:
        kind = act[0]
        printing = [t for t in r.engine.tickets() if t.state is TicketState.PRINTING]
        if kind == "issue":
            res = r(IssueTicket, service=act[1], dispenser="d0", issued_at=r.now)
            if res.ok:
                t = res.ticket
                key = (t.service, t.number)
                assert key not in online and key not in leased
                online[key] = t.id
        elif kind in ("print", "void") and printing:
            t = printing[act[1] % len(printing)]
            cls = TicketPrinted if kind == "print" else TicketVoided
            res = r(cls, ticket_id=t.id)
            assert res.ok
            if kind == "void":
                del online[(t.service, t.number)]
        elif kind == "lease":
            res = r(LeaseBlock, dispenser=act[1], service=act[2], business_day=DAY, size=act[3])
            if res.ok:
                b = res.lease
                for n in range(b.first, b.last + 1):
                    assert (b.service, n) not in online and (b.service, n) not in leased
                    leased[(b.service, n)] = b.dispenser
        elif kind == "register":
            _, dispenser, service, n = act
            res = r(RegisterTicket, service=service, number=n, dispenser=dispenser, issued_at=r.now)
            key = (service, n)
            if res.code is QueueCode.REGISTERED and res.changes:
                assert leased.get(key) == dispenser and key not in registered
                registered.add(key)
            elif res.code is QueueCode.REGISTERED:
                assert key in registered  # the same ticket again
            elif res.code is QueueCode.DUPLICATE_NUMBER:
                assert key in registered or key in online
            else:
                assert res.code is QueueCode.NOT_LEASED
                assert leased.get(key) != dispenser
        elif kind == "replay" and r.ops:
            i = act[1] % len(r.ops)
            again = r.engine.apply(r.ops[i], r.now)
            first = r.results[i]
            assert again.duplicate and (again.code, again.ticket) == (first.code, first.ticket)
        r.now += 1
    live = [t for t in r.engine.tickets() if t.state is not TicketState.VOIDED]
    assert len({(t.service, t.number) for t in live}) == len(live)
    assert {(t.service, t.number) for t in live if t.source is Source.ONLINE} == set(online)
    assert not set(online) & set(leased)
