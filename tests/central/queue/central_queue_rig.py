"""Shared helpers for the queue engine tests: a small office's settings and a rig that
applies operations with fresh op ids at a clock the test moves."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from central.queue.engine import QueueEngine
from central.queue.ops import (
    CallNext,
    FinishService,
    IssueTicket,
    Op,
    OpResult,
    SignIn,
    TicketPrinted,
)
from central.queue.settings import QueueSection

#: 2026-03-10 09:00 Europe/Warsaw (CET, UTC+1): a Tuesday morning.
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC).timestamp()
DAY = date(2026, 3, 10)


def settings(**overrides: Any) -> QueueSection:
    """Registration (A, 1-999), payments (B, 1-99) and a small range C (1-5); counter c1
    serves reg and pay (reg weighs 2), c2 pay only, c3 reg only."""
    doc: dict[str, Any] = {
        "timezone": "Europe/Warsaw",
        "day_boundary": "04:00",
        "services": [
            {
                "id": "reg",
                "name": "Registration",
                "prefix": "A",
                "first": 1,
                "last": 999,
                "target_wait": 600.0,
                "avg_service": 300.0,
            },
            {
                "id": "pay",
                "name": "Payments",
                "prefix": "B",
                "first": 1,
                "last": 99,
                "target_wait": 300.0,
                "avg_service": 120.0,
            },
            {"id": "small", "prefix": "C", "first": 1, "last": 5},
        ],
        "counters": [
            {"id": "c1", "name": "Counter 1", "services": {"reg": 2.0, "pay": 1.0}},
            {"id": "c2", "name": "Counter 2", "services": {"pay": 1.0}},
            {"id": "c3", "services": {"reg": 1.0}},
        ],
    }
    doc.update(overrides)
    return QueueSection.model_validate(doc)


class Rig:
    """An engine, a clock and fresh op ids."""

    def __init__(self, engine: QueueEngine | None = None, now: float = T0, **overrides: Any):
        self.engine = engine or QueueEngine(settings(**overrides))
        self.now = now
        self._ids = itertools.count(1)
        self.ops: list[Op] = []
        self.results: list[OpResult] = []

    def op_id(self) -> str:
        return f"op-{next(self._ids)}"

    def __call__(self, cls: type[Op], **fields: Any) -> OpResult:
        fields.setdefault("op_id", self.op_id())
        op = cls(**fields)
        result = self.engine.apply(op, self.now)
        self.ops.append(op)
        self.results.append(result)
        return result

    def at(self, seconds: float) -> Rig:
        self.now = T0 + seconds
        return self

    def walk_in(self, service: str = "reg", priority: bool = False) -> str:
        """Issue and print a ticket issued now; its id."""
        issued = self(
            IssueTicket, service=service, dispenser="d1", issued_at=self.now, priority=priority
        )
        assert issued.ok, issued
        assert issued.ticket is not None
        printed = self(TicketPrinted, ticket_id=issued.ticket.id)
        assert printed.ok, printed
        return issued.ticket.id

    def open(self, *counters: str) -> None:
        for c in counters:
            assert self(SignIn, counter=c, staff=f"staff-{c}").ok

    def serve_next(self, counter: str) -> str:
        called = self(CallNext, counter=counter)
        assert called.ok, called
        assert called.ticket is not None
        assert self(FinishService, counter=counter).ok
        return called.ticket.id


def call_one(r: Rig, counter: str = "c1") -> str:
    """Sign ``counter`` in, walk a customer in and call them there; the ticket's id."""
    r.open(counter)
    tid = r.walk_in()
    assert r(CallNext, counter=counter).ok
    return tid


def state_of(engine: QueueEngine) -> dict[tuple[str, str], Any]:
    return {(e.KIND, e.key): e for e in engine.entities()}


def codes(results: Iterable[OpResult]) -> list[str]:
    return [str(r.code) for r in results]
