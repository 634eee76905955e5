"""How tickets get their numbers: online issues, voided prints, leased blocks, offline
registrations. No number is ever held by two tickets of one service and day.

Each (business day, service) has a :class:`~central.queue.model.NumberPool`: ``next`` is
the lowest number never handed out. An online issue takes a released number first (one a
voided print gave back), else ``next``; a lease takes ``next`` and the numbers after it,
so online issuing skips past every leased block. A released number is always below
``next`` and outside every block, so it cannot be in a lease. An offline ticket is
accepted only from a block leased to its dispenser, once.
"""

from __future__ import annotations

import bisect
from dataclasses import replace

from central.queue.codes import QueueCode
from central.queue.model import (
    AppointmentState,
    DuplicateNumber,
    Lease,
    Outcome,
    Source,
    Ticket,
    TicketState,
)
from central.queue.ops import IssueTicket, LeaseBlock, RegisterTicket, TicketPrinted, TicketVoided
from central.queue.settings import ServiceDef
from central.queue.state import QueueState, Reply, done, refuse, ticket_id


def take_number(st: QueueState, day_ts: float, service: ServiceDef) -> Ticket | None:
    """A new ``printing`` ticket numbered online for the business day of ``day_ts``
    (the caller fills in who it is for), or None when the range is used up. Nothing is
    stored: :func:`store_number` does that once the caller has decided."""
    day = st.day_of(day_ts)
    pool = st.pool(day, service)
    if pool.released:
        number = pool.released[0]
    elif pool.next <= service.last:
        number = pool.next
    else:
        return None
    return Ticket(
        id=ticket_id(day, service.id, number),
        day=day,
        origin_service=service.id,
        number=number,
        label=service.label(number),
        service=service.id,
        state=TicketState.PRINTING,
        source=Source.ONLINE,
        priority=False,
        issued_at=day_ts,
        queue_at=day_ts,
    )


def store_number(st: QueueState, t: Ticket, service: ServiceDef) -> None:
    """Store the new ticket and advance its pool past its number."""
    pool = st.pool(t.day, service)
    if pool.released and pool.released[0] == t.number:
        st.put(replace(pool, released=pool.released[1:]))
    else:
        st.put(replace(pool, next=t.number + 1))
    st.put(t)


def issue(st: QueueState, op: IssueTicket, now: float) -> Reply:
    service = st.services.get(op.service)
    if service is None:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {op.service!r}")
    t = take_number(st, now, service)
    if t is None:
        return refuse(QueueCode.RANGE_EXHAUSTED, f"{service.id}: every number is taken today")
    t = replace(
        t,
        priority=op.priority,
        issued_at=op.issued_at,
        queue_at=op.issued_at,
        dispenser=op.dispenser,
        request_id=op.request_id,
    )
    store_number(st, t, service)
    return done(QueueCode.ISSUED, ticket=t)


def printed(st: QueueState, op: TicketPrinted, now: float) -> Reply:
    t = st.tickets.get(op.ticket_id)
    if t is None:
        return refuse(QueueCode.UNKNOWN_TICKET, op.ticket_id)
    if t.state is not TicketState.PRINTING:
        return refuse(QueueCode.NOT_PRINTING, f"{t.id} is {t.state}", ticket=t)
    t = replace(t, state=TicketState.WAITING, segment=1)
    st.put(t)
    st.open_visit(t, t.issued_at)
    return done(QueueCode.PRINTED, ticket=t)


def voided(st: QueueState, op: TicketVoided, now: float) -> Reply:
    t = st.tickets.get(op.ticket_id)
    if t is None:
        return refuse(QueueCode.UNKNOWN_TICKET, op.ticket_id)
    if t.state is not TicketState.PRINTING:
        return refuse(QueueCode.NOT_PRINTING, f"{t.id} is {t.state}", ticket=t)
    t = replace(t, state=TicketState.VOIDED, ended_at=now, note=op.reason)
    st.put(t)
    pool = st.pools.get((t.day, t.origin_service))
    if pool is not None:
        released = list(pool.released)
        bisect.insort(released, t.number)
        st.put(replace(pool, released=tuple(released)))
    if t.appointment is not None:
        a = st.appointments.get(t.appointment)
        if a is not None and a.ticket_id == t.id:
            st.put(replace(a, state=AppointmentState.BOOKED, ticket_id=None, checked_in_at=None))
    return done(QueueCode.VOIDED, ticket=t)


def lease(st: QueueState, op: LeaseBlock, now: float) -> Reply:
    service = st.services.get(op.service)
    if service is None:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {op.service!r}")
    size = st.settings.lease_size if op.size is None else op.size
    if size < 1:
        return refuse(QueueCode.BAD_REQUEST, f"a block of {size} numbers")
    if op.business_day < st.day_of(now):
        return refuse(QueueCode.DAY_CLOSED, f"{op.business_day} is over")
    pool = st.pool(op.business_day, service)
    if pool.next > service.last:
        return refuse(QueueCode.RANGE_EXHAUSTED, f"{service.id}: no numbers left to lease")
    block = Lease(
        day=op.business_day,
        service=service.id,
        dispenser=op.dispenser,
        first=pool.next,
        last=min(pool.next + size - 1, service.last),
        leased_at=now,
    )
    st.put(replace(pool, next=block.last + 1))
    st.put(block)
    return done(QueueCode.LEASED, lease=block)


def register(st: QueueState, op: RegisterTicket, now: float) -> Reply:
    service = st.services.get(op.service)
    if service is None:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {op.service!r}")
    day = st.day_of(op.issued_at)
    if st.kept_from is not None and day < st.kept_from:
        return refuse(QueueCode.DAY_CLOSED, f"{day} is forgotten")
    tid = ticket_id(day, service.id, op.number)
    held = st.tickets.get(tid)
    if held is not None and held.state is not TicketState.VOIDED:
        if (
            held.source is Source.OFFLINE
            and held.dispenser == op.dispenser
            and held.issued_at == op.issued_at
        ):
            return done(QueueCode.REGISTERED, "already registered", ticket=held)
        st.put(
            DuplicateNumber(
                key=op.op_id,
                day=day,
                service=service.id,
                number=op.number,
                dispenser=op.dispenser,
                issued_at=op.issued_at,
                at=now,
                holder=held.id,
            )
        )
        return refuse(
            QueueCode.DUPLICATE_NUMBER,
            f"{held.label} of {day} is already held ({held.source}, {held.dispenser})",
            ticket=held,
        )
    blocks = st.leases_of.get((day, service.id, op.dispenser), [])
    if not any(op.number in b for b in blocks):
        return refuse(
            QueueCode.NOT_LEASED, f"{op.number} is not in a block {op.dispenser} leased for {day}"
        )
    t = Ticket(
        id=tid,
        day=day,
        origin_service=service.id,
        number=op.number,
        label=service.label(op.number),
        service=service.id,
        state=TicketState.WAITING,
        source=Source.OFFLINE,
        priority=op.priority,
        issued_at=op.issued_at,
        queue_at=op.issued_at,
        dispenser=op.dispenser,
        segment=1,
    )
    st.put(t)
    st.open_visit(t, t.issued_at)
    if st.mark is not None and day < st.mark.current:
        t = replace(t, state=TicketState.EXPIRED, ended_at=now)  # its day is already over
        st.put(t)
        st.update_visit(t, outcome=Outcome.EXPIRED, ended_at=now)
    return done(QueueCode.REGISTERED, ticket=t)
