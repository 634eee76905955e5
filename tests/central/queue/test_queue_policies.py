"""The next-ticket policies' fairness properties, checked on random arrivals and calls
through the engine (and on the pure policies where that is simpler)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from central_queue_rig import Rig
from hypothesis import given, settings
from hypothesis import strategies as st

from central.queue.codes import QueueCode
from central.queue.model import TicketKind
from central.queue.ops import CallNext, FinishService
from central.queue.policies import (
    Candidate,
    LongestWaitPolicy,
    PriorityRatioPolicy,
    make_policy,
    parse_ratio,
)

COUNTER = {"id": "c1", "services": {"reg": 3.0, "pay": 1.0}}


@dataclass
class Made:
    """One call: the candidates there were, and the one called."""

    waiting: list[Candidate]
    called: Candidate
    at: float


arrival = st.tuples(
    st.just("arrive"), st.sampled_from(["reg", "pay"]), st.booleans(), st.integers(0, 120)
)
call = st.tuples(st.just("call"), st.integers(0, 600))
rounds = st.lists(
    st.tuples(st.lists(arrival, max_size=6), st.lists(call, max_size=5)), min_size=2, max_size=12
)
#: Rounds of a few arrivals then a few calls, flattened: queues build up and drain.
script = rounds.map(lambda rs: [e for arrivals, calls in rs for e in (*arrivals, *calls)])


def run(policy: dict, events: list[tuple], drain: bool = True) -> tuple[Rig, list[Made]]:
    """Apply the script at one counter, then (``drain``) call until nobody waits."""
    rig = Rig(policy=policy, counters=[COUNTER])
    rig.open("c1")
    made: list[Made] = []

    def call_one() -> bool:
        waiting = rig.engine.candidates("c1")
        res = rig(CallNext, counter="c1")
        if res.code is QueueCode.NOTHING_WAITING:
            assert waiting == []
            return False
        assert res.ok and res.ticket is not None
        (called,) = [c for c in waiting if c.ticket_id == res.ticket.id]
        made.append(Made(waiting, called, rig.now))
        assert rig(FinishService, counter="c1").ok
        return True

    for event in events:
        if event[0] == "arrive":
            _, service, priority, dt = event
            rig.now += dt
            rig.walk_in(service, priority=priority)
        else:
            rig.now += event[1]
            call_one()
    while drain and call_one():
        rig.now += 60
    return rig, made


def fifo_within(made: list[Made], key) -> None:
    """No call takes a ticket while an earlier one of the same ``key`` class waits."""
    for m in made:
        same = [c for c in m.waiting if key(c) == key(m.called)]
        assert m.called.order == min(c.order for c in same)


def everybody_served(rig: Rig, made: list[Made]) -> None:
    issued = {t.id for t in rig.engine.tickets()}
    assert {m.called.ticket_id for m in made} == issued


# --------------------------------------------------------------------------- fifo


@given(events=script)
@settings(max_examples=80, deadline=None)
def test_fifo_calls_the_earliest_ticket(events: list[tuple]) -> None:
    rig, made = run({"name": "fifo"}, events)
    for m in made:
        assert m.called.order == min(c.order for c in m.waiting)
    fifo_within(made, lambda c: c.service)  # never a later ticket of a service first
    everybody_served(rig, made)


# ------------------------------------------------------------------ priority ratio

RATIOS = st.sampled_from(["1:2", "1:1", "2:1", "3:1", "1:3", "3:2"])


@given(events=script, ratio=RATIOS, cap=st.integers(1, 3))
@settings(max_examples=120, deadline=None)
def test_priority_ratio(events: list[tuple], ratio: str, cap: int) -> None:
    p, n = parse_ratio(ratio)
    longest = min(p, cap)
    rig, made = run({"name": "priority_ratio", "ratio": ratio, "cap": cap}, events)
    kinds = [m.called.kind for m in made]

    run_p, run_n = 0, n  # before the first call a priority ticket is due
    for m, kind in zip(made, kinds, strict=True):
        waiting = {c.kind for c in m.waiting}
        # never more than min(P, cap) priority calls in a row while a normal ticket waits
        if TicketKind.NORMAL in waiting and run_p >= longest:
            assert kind is TicketKind.NORMAL
        # never more than N normal calls in a row while a priority ticket waits
        if TicketKind.PRIORITY in waiting and run_n >= n:
            assert kind is TicketKind.PRIORITY
        # while both wait, a priority call continues a short run or follows N normal calls
        if kind is TicketKind.PRIORITY and TicketKind.NORMAL in waiting:
            assert 0 < run_p < longest or (run_p == 0 and run_n >= n)
        run_p = run_p + 1 if kind is TicketKind.PRIORITY else 0
        run_n = min(run_n + 1, n) if kind is TicketKind.NORMAL else 0

    # the ratio over any stretch of calls made while both kinds waited: in a window of L
    # such calls, at most P * (L // (P + N) + 1) priority calls
    both = [{TicketKind.PRIORITY, TicketKind.NORMAL} <= {c.kind for c in m.waiting} for m in made]
    stretch: list[int] = []
    for is_both, kind in [*zip(both, kinds, strict=True), (False, None)]:
        if is_both:
            stretch.append(1 if kind is TicketKind.PRIORITY else 0)
            continue
        sums = [0]
        for x in stretch:
            sums.append(sums[-1] + x)
        for i in range(len(stretch)):
            for j in range(i + 1, len(stretch) + 1):
                assert sums[j] - sums[i] <= p * ((j - i) // (p + n) + 1)
        stretch = []

    fifo_within(made, lambda c: c.kind)  # first come first served within each kind
    everybody_served(rig, made)


def pattern(made: list[Made]) -> str:
    return "".join("P" if m.called.kind is TicketKind.PRIORITY else "N" for m in made)


def test_priority_ratio_pattern() -> None:
    # six priority and six normal tickets waiting, "1:2": P N N P N N ...
    events = [("arrive", "reg", prio, 1) for prio in [True] * 6 + [False] * 6]
    _, made = run({"name": "priority_ratio", "ratio": "1:2", "cap": 2}, events)
    assert pattern(made) == "PNNPNNPNNPPP"  # then only priority tickets are left


def test_priority_cap_cuts_a_priority_heavy_ratio() -> None:
    events = [("arrive", "reg", prio, 1) for prio in [True] * 6 + [False] * 3]
    _, made = run({"name": "priority_ratio", "ratio": "3:1", "cap": 2}, events)
    assert pattern(made) == "PPNPPNPPN"


def test_a_priority_arriving_after_normal_calls_goes_next() -> None:
    events = [("arrive", "reg", False, 1)] * 4 + [("call", 1)] * 3
    events += [("arrive", "reg", True, 1), ("call", 1)]
    _, made = run({"name": "priority_ratio", "ratio": "1:2", "cap": 2}, events, drain=False)
    assert pattern(made) == "NNNP"


# -------------------------------------------------------------------- longest wait


@given(events=script)
@settings(max_examples=80, deadline=None)
def test_longest_wait_picks_the_greatest_weighted_wait(events: list[tuple]) -> None:
    rig, made = run({"name": "longest_wait"}, events)
    for m in made:
        best = max(c.weighted_wait(m.at) for c in m.waiting)
        assert m.called.weighted_wait(m.at) == best
        assert m.called.weight == COUNTER["services"][m.called.service]
    fifo_within(made, lambda c: c.service)
    everybody_served(rig, made)


def test_longest_wait_weights_services() -> None:
    policy = LongestWaitPolicy()
    reg = Candidate("r", "reg", TicketKind.NORMAL, queue_at=100.0, number=1, weight=3.0)
    pay = Candidate("p", "pay", TicketKind.NORMAL, queue_at=0.0, number=1, weight=1.0)
    assert policy.pick([pay, reg], "c1", {}, now=200.0) is reg  # 300 against 200
    assert policy.pick([pay, reg], "c1", {}, now=100.0) is pay  # 0 against 100


# ------------------------------------------------------------------ appointments


@pytest.mark.parametrize("name", ["fifo", "priority_ratio", "longest_wait"])
def test_appointments_go_first_in_every_policy(name: str) -> None:
    cands = [
        Candidate("n", "pay", TicketKind.NORMAL, 0.0, 1, 5.0),
        Candidate("p", "pay", TicketKind.PRIORITY, 1.0, 2, 5.0),
        Candidate("a", "reg", TicketKind.APPOINTMENT, 50.0, 3, 1.0),
    ]
    policy = make_policy(name)
    from central.queue.policies import eligible

    assert policy.pick(eligible(cands), "c1", {}, 100.0).ticket_id == "a"  # type: ignore[union-attr]
    assert PriorityRatioPolicy().pick(cands, "c1", {}, 100.0).ticket_id == "a"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["0:1", "1:0", "1", "a:b", "1:2:3"])
def test_bad_ratios(bad: str) -> None:
    with pytest.raises(ValueError, match="ratio"):
        parse_ratio(bad)
