"""The queue store: a reopened file gives back the engine exactly as it was, and the
same answers to repeated op ids."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from central_queue_rig import DAY, T0, Rig, state_of
from hypothesis import given, settings
from hypothesis import strategies as st

from central.queue.engine import QueueEngine
from central.queue.ops import (
    BookAppointment,
    CallNext,
    CallTicket,
    CheckIn,
    ConfirmCall,
    FinishService,
    IssueTicket,
    LeaseBlock,
    NoShow,
    Park,
    Recall,
    RegisterTicket,
    Resume,
    SignIn,
    StartService,
    TicketPrinted,
    TicketVoided,
    Transfer,
)
from central.queue.store import QueueStore
from entrada.errors import StoreError


class Saved(Rig):
    """A rig that saves every result, as the service does."""

    def __init__(self, store: QueueStore, **kw) -> None:
        super().__init__(**kw)
        self.store = store

    def __call__(self, cls, **fields):
        result = super().__call__(cls, **fields)
        self.store.save(result)
        return result

    def tick(self) -> None:
        self.store.save(self.engine.tick(self.now))


def busy_day(r: Saved) -> None:
    r.open("c1", "c2")
    a, b = r.walk_in(), r.at(10).walk_in("pay", priority=True)
    lease = r(LeaseBlock, dispenser="d2", service="reg", business_day=DAY, size=5).lease
    r(RegisterTicket, service="reg", number=lease.first, dispenser="d2", issued_at=T0 + 5)
    r(RegisterTicket, service="reg", number=lease.first, dispenser="d3", issued_at=T0 + 6)
    void = r(IssueTicket, service="reg", dispenser="d1", issued_at=r.now).ticket
    r(TicketVoided, ticket_id=void.id, reason="jam")
    r(BookAppointment, service="reg", slot=T0 + 1800, code="4242", appointment_id="ap1")
    r(BookAppointment, service="reg", slot=T0 + 60, code="1111", appointment_id="ap2")
    r.at(100)
    checked = r(CheckIn, code="4242", dispenser="d1", issued_at=r.now).ticket
    r(TicketPrinted, ticket_id=checked.id)
    called = r(CallNext, counter="c1")
    r(ConfirmCall, call_id=called.call.call_id, display="b1", shown_at=r.now + 1)
    r.at(200)(Recall, counter="c1")
    r(StartService, counter="c1")
    r.at(400)(FinishService, counter="c1")
    r(CallNext, counter="c2")
    r(Transfer, ticket_id=b, to_service="reg", to_counter="c1")
    r(CallTicket, counter="c1", ticket_id=b)
    r(Park, ticket_id=b)
    r(Resume, ticket_id=b)
    r.at(2000).tick()  # ap2 never came
    r(CallNext, counter="c1")
    r(NoShow, counter="c1")
    assert a


def reopened(path: Path, engine: QueueEngine) -> QueueEngine:
    with QueueStore(path) as again:
        return QueueEngine(engine.settings, snapshot=again.load())


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    with QueueStore(path) as store:
        r = Saved(store)
        busy_day(r)
    engine = reopened(path, r.engine)
    r.store = QueueStore(path)  # the original goes on with its own connection

    assert state_of(engine) == state_of(r.engine)
    assert engine.board(r.now) == r.engine.board(r.now)
    assert engine.duplicate_numbers() == r.engine.duplicate_numbers()
    for op, first in zip(r.ops, r.results, strict=True):
        again = engine.apply(op, r.now + 999)
        assert again.duplicate and again == first.__class__(
            **{**first.__dict__, "duplicate": True, "changes": ()}
        )
    # and from here both engines go on alike (indexes, policy state, op memory)
    r.walk_in()
    follow = [CallNext(op_id="next-1", counter="c1"), CallNext(op_id="next-2", counter="c2")]
    for op, first in zip(r.ops[-2:], r.results[-2:], strict=True):  # the walk-in
        assert engine.apply(op, r.now) == first
    assert [engine.apply(op, r.now) for op in follow] == [
        r.engine.apply(op, r.now) for op in follow
    ]
    r.store.close()


def test_the_store_keeps_forgotten_days_for_reports(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    with QueueStore(path) as store:
        r = Saved(store)
        busy_day(r)
        n_visits = len(r.engine.visits())
        r.at(2 * 86_400).tick()
        assert r.engine.visits() == []
        engine = reopened(path, r.engine)
        assert state_of(engine) == state_of(r.engine)
        assert len(store.visits(DAY, DAY + timedelta(days=1))) == n_visits
        assert store.result(r.results[0].op_id) is not None  # the op log stays too
        assert engine.remembered(r.results[0].op_id) is None


def test_a_failed_save_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    with QueueStore(path) as store:
        r = Saved(store)
        r.open("c1")
        result = r.engine.apply(SignIn(op_id="x", counter="c2", staff="bob"), r.now)
        store.save(result)
        changed = r.engine.apply(
            IssueTicket(op_id="x2", service="reg", dispenser="d", issued_at=r.now), r.now
        )
        with pytest.raises(StoreError):
            store.save(type(changed)(**{**changed.__dict__, "op_id": "x"}))  # op id taken
        engine = reopened(path, r.engine)
        assert engine.tickets() == []  # the ticket of the failed transaction is not there


def test_the_file(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite"
    QueueStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema 99"):
        QueueStore(path)


def test_an_empty_store_loads_an_empty_engine(tmp_path: Path) -> None:
    with QueueStore(tmp_path / "q.sqlite") as store:
        snap = store.load()
    assert snap.entities == [] and snap.results == []


# ----------------------------------------------------------------- random days

action = st.one_of(
    st.tuples(st.just("walk_in"), st.sampled_from(["reg", "pay"]), st.booleans()),
    st.tuples(st.just("call"), st.sampled_from(["c1", "c2", "c3"])),
    st.tuples(st.just("finish"), st.sampled_from(["c1", "c2", "c3"])),
    st.tuples(st.just("recall"), st.sampled_from(["c1", "c2", "c3"])),
    st.tuples(st.just("tick"), st.integers(0, 30_000)),
)


@given(actions=st.lists(action, max_size=40))
@settings(max_examples=25, deadline=None)
def test_random_days_round_trip(actions: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.sqlite"
        with QueueStore(path, synchronous="NORMAL") as store:
            r = Saved(store, policy={"name": "priority_ratio", "ratio": "1:2", "cap": 2})
            r.open("c1", "c2", "c3")
            for act in actions:
                r.now += 30
                if act[0] == "walk_in":
                    r.walk_in(act[1], priority=act[2])
                elif act[0] == "call":
                    r(CallNext, counter=act[1])
                elif act[0] == "finish":
                    r(FinishService, counter=act[1])
                elif act[0] == "recall":
                    r(Recall, counter=act[1])
                else:
                    r.now += act[1]
                    r.tick()
        assert state_of(reopened(path, r.engine)) == state_of(r.engine)


def test_day_mark_loaded(tmp_path: Path) -> None:
    with QueueStore(tmp_path / "q.sqlite") as store:
        r = Saved(store)
        r.walk_in()
    assert reopened(tmp_path / "q.sqlite", r.engine).day == date(2026, 3, 10)
