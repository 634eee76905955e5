"""The engine's in-memory state: every entity by key, the indexes the operations need, and
the list of changes the operation being applied has made.

:meth:`QueueState.put` is the only way an entity changes: it stores the new value, keeps
the indexes right (the waiting tickets of each service, the tickets reserved for a counter,
appointment codes, the order of calls and of finished visits) and records the value as a
change for the store. Loading a snapshot puts every entity the same way, so a restored
state has the same indexes as the one that was saved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from central.queue.businessday import business_day
from central.queue.codes import QueueCode
from central.queue.model import (
    AT_COUNTER,
    CLOSED_STATES,
    Appointment,
    Call,
    Counter,
    DayMark,
    DuplicateNumber,
    Entity,
    Lease,
    NumberPool,
    Outcome,
    Ticket,
    TicketState,
    Visit,
    entity_day,
)
from central.queue.ops import OpResult
from central.queue.settings import CounterDef, QueueSection, ServiceDef
from entrada.errors import EntradaError


class QueueError(EntradaError):
    """The engine was used wrongly or found its state inconsistent (a bug, not a refusal:
    refusals are results). Reload the engine from its store after one."""


@dataclass(frozen=True)
class QueueSnapshot:
    """What the store hands back: every entity, and the remembered results with the
    business day each was applied on (oldest first)."""

    entities: list[Entity] = field(default_factory=list)
    results: list[tuple[date, OpResult]] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    """A handler's answer; the engine adds the op id, time and changes."""

    ok: bool
    code: QueueCode
    ticket: Ticket | None = None
    call: Call | None = None
    appointment: Appointment | None = None
    lease: Lease | None = None
    detail: str = ""


def done(
    code: QueueCode,
    detail: str = "",
    *,
    ticket: Ticket | None = None,
    call: Call | None = None,
    appointment: Appointment | None = None,
    lease: Lease | None = None,
) -> Reply:
    return Reply(True, code, ticket, call, appointment, lease, detail)


def refuse(
    code: QueueCode,
    detail: str = "",
    *,
    ticket: Ticket | None = None,
    call: Call | None = None,
    appointment: Appointment | None = None,
) -> Reply:
    return Reply(False, code, ticket, call, appointment, None, detail)


def ticket_id(day: date, service: str, number: int) -> str:
    return f"{day.isoformat()}:{service}:{number}"


class QueueState:
    def __init__(self, settings: QueueSection) -> None:
        self.settings = settings
        self.services: dict[str, ServiceDef] = {s.id: s for s in settings.services}
        self.counter_defs: dict[str, CounterDef] = {c.id: c for c in settings.counters}
        self.tickets: dict[str, Ticket] = {}
        self.calls: dict[str, Call] = {}
        self.call_order: list[str] = []
        self.counters: dict[str, Counter] = {c.id: Counter(c.id) for c in settings.counters}
        self.appointments: dict[str, Appointment] = {}
        self.codes: dict[str, str] = {}  # check-in code -> appointment id
        self.pools: dict[tuple[date, str], NumberPool] = {}
        self.leases: dict[str, Lease] = {}
        self.leases_of: dict[tuple[date, str, str], list[Lease]] = defaultdict(list)
        self.visits: dict[str, Visit] = {}
        self.ended: list[str] = []  # visit keys, in the order they ended
        self.duplicates: dict[str, DuplicateNumber] = {}
        self.mark: DayMark | None = None
        self.waiting: dict[str, set[str]] = defaultdict(set)  # service -> waiting ticket ids
        self.reserved: dict[str, set[str]] = defaultdict(set)  # counter -> waiting ticket ids
        self._changes: dict[tuple[str, str], Entity] = {}

    # ------------------------------------------------------------------- changes

    def take_changes(self) -> tuple[Entity, ...]:
        changes = tuple(self._changes.values())
        self._changes = {}
        return changes

    def put(self, entity: Entity, *, record: bool = True) -> None:
        """Store ``entity`` (a new value), update the indexes, record the change."""
        if isinstance(entity, Ticket):
            self._put_ticket(entity)
        elif isinstance(entity, Call):
            if entity.call_id not in self.calls:
                self.call_order.append(entity.call_id)
            self.calls[entity.call_id] = entity
        elif isinstance(entity, Counter):
            if entity.id not in self.counter_defs:
                return  # a counter no longer configured: forget it
            self.counters[entity.id] = entity
        elif isinstance(entity, Appointment):
            self.appointments[entity.id] = entity
            self.codes[entity.code] = entity.id
        elif isinstance(entity, NumberPool):
            self.pools[(entity.day, entity.service)] = entity
        elif isinstance(entity, Lease):
            if entity.key not in self.leases:
                self.leases_of[(entity.day, entity.service, entity.dispenser)].append(entity)
            self.leases[entity.key] = entity
        elif isinstance(entity, Visit):
            old = self.visits.get(entity.key)
            if entity.outcome is not None and (old is None or old.outcome is None):
                self.ended.append(entity.key)
            self.visits[entity.key] = entity
        elif isinstance(entity, DuplicateNumber):
            self.duplicates[entity.key] = entity
        elif isinstance(entity, DayMark):
            self.mark = entity
        if record:
            self._changes[(entity.KIND, entity.key)] = entity

    def _put_ticket(self, t: Ticket) -> None:
        old = self.tickets.get(t.id)
        if old is not None and old.state is TicketState.WAITING:
            self.waiting[old.service].discard(old.id)
            if old.for_counter is not None:
                self.reserved[old.for_counter].discard(old.id)
        if t.state is TicketState.WAITING:
            self.waiting[t.service].add(t.id)
            if t.for_counter is not None:
                self.reserved[t.for_counter].add(t.id)
        self.tickets[t.id] = t

    # ------------------------------------------------------------------- lookups

    def day_of(self, ts: float) -> date:
        return business_day(ts, self.settings.timezone, self.settings.day_boundary)

    @property
    def kept_from(self) -> date | None:
        return self.mark.kept_from if self.mark is not None else None

    def pool(self, day: date, service: ServiceDef) -> NumberPool:
        return self.pools.get((day, service.id)) or NumberPool(day, service.id, service.first)

    def visit(self, t: Ticket) -> Visit | None:
        return self.visits.get(t.visit_key)

    def counter_of(self, staff: str) -> Counter | None:
        return next((c for c in self.counters.values() if c.staff == staff), None)

    def entities(self) -> Iterator[Entity]:
        """Every entity held, in a stable order (kind, then insertion)."""
        if self.mark is not None:
            yield self.mark
        yield from self.counters.values()
        yield from self.pools.values()
        yield from self.leases.values()
        yield from self.tickets.values()
        yield from self.visits.values()
        yield from (self.calls[k] for k in self.call_order)
        yield from self.appointments.values()
        yield from self.duplicates.values()

    # ------------------------------------------------------------ shared moves

    def update_visit(self, t: Ticket, **fields: Any) -> None:
        v = self.visit(t)
        if v is not None:
            self.put(replace(v, **fields))

    def open_visit(self, t: Ticket, queued_at: float) -> None:
        self.put(
            Visit(
                key=t.visit_key,
                day=t.day,
                ticket_id=t.id,
                service=t.service,
                kind=t.kind,
                issued_at=t.issued_at,
                queued_at=queued_at,
            )
        )

    def free_counter(self, t: Ticket) -> None:
        """The counter holding ``t`` (called or serving) lets it go."""
        if t.state in AT_COUNTER and t.counter is not None:
            c = self.counters.get(t.counter)
            if c is not None and c.current == t.id:
                self.put(replace(c, current=None, current_call=None))

    # ------------------------------------------------------------------ the day

    def roll_day(self, now: float) -> None:
        """Enter the business day of ``now`` if it is a new one: tickets of earlier days
        still waiting, parked or printing expire; what is older than yesterday is
        forgotten (the store keeps it; it stops loading it, by the day mark)."""
        today = self.day_of(now)
        if self.mark is not None and today <= self.mark.current:
            return
        first = self.mark is None
        self.put(DayMark(current=today, kept_from=today - timedelta(days=1)))
        if first:
            return
        kept_from = today - timedelta(days=1)
        for t in list(self.tickets.values()):
            if t.day >= today or t.state in CLOSED_STATES:
                continue
            if t.state in AT_COUNTER and t.day >= kept_from:
                continue  # a counter still has it: staff will finish it
            self.expire(t, now)
        self.forget_before(kept_from)

    def expire(self, t: Ticket, now: float) -> None:
        self.free_counter(t)
        self.put(replace(t, state=TicketState.EXPIRED, ended_at=now, counter=None))
        v = self.visit(t)
        if v is not None and v.outcome is None:
            self.put(replace(v, outcome=Outcome.EXPIRED, ended_at=now))

    def forget_before(self, day: date) -> None:
        """Drop every entity of a business day before ``day`` (no change recorded)."""

        def old(e: Entity) -> bool:
            d = entity_day(e)
            return d is not None and d < day

        self.tickets = {k: t for k, t in self.tickets.items() if not old(t)}
        self.visits = {k: v for k, v in self.visits.items() if not old(v)}
        self.ended = [k for k in self.ended if k in self.visits]
        self.calls = {k: c for k, c in self.calls.items() if not old(c)}
        self.call_order = [k for k in self.call_order if k in self.calls]
        self.appointments = {k: a for k, a in self.appointments.items() if not old(a)}
        self.codes = {a.code: a.id for a in self.appointments.values()}
        self.pools = {k: p for k, p in self.pools.items() if not old(p)}
        self.leases = {k: le for k, le in self.leases.items() if not old(le)}
        self.leases_of = defaultdict(list)
        for le in self.leases.values():
            self.leases_of[(le.day, le.service, le.dispenser)].append(le)
        self.duplicates = {k: d for k, d in self.duplicates.items() if not old(d)}
        for ids in (*self.waiting.values(), *self.reserved.values()):
            ids.intersection_update(self.tickets)
