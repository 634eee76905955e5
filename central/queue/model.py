"""The queue's state, as frozen values: tickets, calls, counters, appointments, numbering.

The engine never mutates one of these: it replaces it with a new value
(:func:`dataclasses.replace`) and lists the new value in the operation's ``changes``, which
is exactly what :mod:`central.queue.store` writes. Every entity has a ``KIND`` and a
``key`` (its primary key in the store) and, when it belongs to a business day, a ``day``
(the store loads only the days the engine still holds).

Times are Unix times (float seconds); business days are local dates (see
:mod:`central.queue.businessday`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import TypeAdapter


class TicketState(StrEnum):
    PRINTING = "printing"  # a number taken online; the dispenser is printing it
    WAITING = "waiting"  # in the queue
    CALLED = "called"  # called to a counter, not there yet
    SERVING = "serving"  # at the counter
    PARKED = "parked"  # out of the queue for a while (fetching a document)
    DONE = "done"  # served
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    VOIDED = "voided"  # the print failed; the number went back to the pool
    EXPIRED = "expired"  # still waiting when its business day ended


#: States a ticket never leaves.
CLOSED_STATES = frozenset(
    {
        TicketState.DONE,
        TicketState.NO_SHOW,
        TicketState.CANCELLED,
        TicketState.VOIDED,
        TicketState.EXPIRED,
    }
)
#: States of a ticket held by a counter.
AT_COUNTER = frozenset({TicketState.CALLED, TicketState.SERVING})


class TicketKind(StrEnum):
    """What a next-ticket policy sees: appointments first, then priority and normal."""

    APPOINTMENT = "appointment"
    PRIORITY = "priority"
    NORMAL = "normal"


class Source(StrEnum):
    ONLINE = "online"  # numbered by central (IssueTicket)
    OFFLINE = "offline"  # numbered by a dispenser from a leased block (RegisterTicket)
    APPOINTMENT = "appointment"  # numbered by central at check-in


class AppointmentState(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"  # never checked in within the window (cancelled by tick)


class Outcome(StrEnum):
    """How a visit (a ticket's stay in one service's queue) ended."""

    FINISHED = "finished"
    NO_SHOW = "no_show"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# ------------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Ticket:
    """A numbered ticket. ``service`` is where it queues now (a transfer changes it);
    ``label`` is what the customer holds and never changes."""

    KIND: ClassVar[str] = "ticket"

    id: str  # f"{day}:{origin_service}:{number}"
    day: date
    origin_service: str
    number: int
    label: str  # prefix + zero-padded number: "A042"
    service: str
    state: TicketState
    source: Source
    priority: bool
    issued_at: float
    #: What orders the queue: ``issued_at``, or the slot of an appointment (kept by a
    #: transfer, so a transferred customer does not start again at the back).
    queue_at: float
    dispenser: str | None = None
    request_id: str = ""
    appointment: str | None = None
    #: Only this counter may call it (a transfer to a counter, or a resumed park).
    for_counter: str | None = None
    #: The counter holding it (called or serving), or the counter that parked it.
    counter: str | None = None
    staff: str | None = None
    calls: int = 0  # calls made so far, recalls included (numbers the call ids)
    recalls: int = 0  # recalls of the current call
    segment: int = 0  # visits so far (a transfer starts a new one)
    called_at: float | None = None  # the current call
    started_at: float | None = None
    ended_at: float | None = None
    note: str = ""  # why it was cancelled or voided

    @property
    def key(self) -> str:
        return self.id

    @property
    def kind(self) -> TicketKind:
        if self.appointment is not None:
            return TicketKind.APPOINTMENT
        return TicketKind.PRIORITY if self.priority else TicketKind.NORMAL

    @property
    def order(self) -> tuple[float, int, str]:
        """Queue order within a kind: earliest first, the number breaking ties."""
        return (self.queue_at, self.number, self.id)

    @property
    def visit_key(self) -> str:
        return f"{self.id}/{self.segment}"


@dataclass(frozen=True)
class Call:
    """One call (or recall) of a ticket to a counter, as a display shows it."""

    KIND: ClassVar[str] = "call"

    call_id: str  # f"{ticket_id}#{n}", n counting this ticket's calls from 1
    day: date
    ticket_id: str
    label: str
    service: str
    counter: str
    called_at: float
    recall: int  # 0 for the call itself, 1.. for its recalls
    #: Displays that confirmed it: display id -> shown_at.
    shown: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.call_id


@dataclass(frozen=True)
class Counter:
    """A counter's live state; its name and services come from config."""

    KIND: ClassVar[str] = "counter"

    id: str
    staff: str | None = None  # nobody signed in: closed
    signed_in_at: float | None = None
    current: str | None = None  # the ticket called or in service here
    current_call: str | None = None
    #: The next-ticket policy's own memory for this counter (see policies.py).
    policy_state: Mapping[str, int] = field(default_factory=dict)

    day: ClassVar[None] = None

    @property
    def key(self) -> str:
        return self.id

    @property
    def open(self) -> bool:
        return self.staff is not None


@dataclass(frozen=True)
class Appointment:
    KIND: ClassVar[str] = "appointment"

    id: str
    day: date  # the business day of the slot
    service: str
    slot: float  # the booked time
    code: str  # the check-in code (made outside the engine, with ``secrets``)
    state: AppointmentState
    booked_at: float
    note: str = ""
    ticket_id: str | None = None
    checked_in_at: float | None = None
    closed_at: float | None = None

    @property
    def key(self) -> str:
        return self.id


@dataclass(frozen=True)
class NumberPool:
    """The numbering of one service on one business day.

    ``next`` is the lowest number never handed out (online, or in a leased block);
    ``released`` holds numbers of voided prints, which online issues take first.
    """

    KIND: ClassVar[str] = "pool"

    day: date
    service: str
    next: int
    released: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}:{self.service}"


@dataclass(frozen=True)
class Lease:
    """Numbers ``first..last`` of a service and day, reserved for one dispenser."""

    KIND: ClassVar[str] = "lease"

    day: date
    service: str
    dispenser: str
    first: int
    last: int
    leased_at: float

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}:{self.service}:{self.first}"

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and self.first <= number <= self.last


@dataclass(frozen=True)
class Visit:
    """A ticket's stay in one service's queue, from joining it to leaving it: what the
    statistics are made of. A transfer ends one visit and starts the next."""

    KIND: ClassVar[str] = "visit"

    key: str  # f"{ticket_id}/{segment}"
    day: date
    ticket_id: str
    service: str
    kind: TicketKind
    issued_at: float
    queued_at: float  # joined this service's queue (a transfer's time for a later visit)
    called_at: float | None = None  # first call in this visit
    started_at: float | None = None
    ended_at: float | None = None
    counter: str | None = None  # the last counter that called it
    staff: str | None = None
    outcome: Outcome | None = None  # None while the visit lasts
    recalls: int = 0


@dataclass(frozen=True)
class DuplicateNumber:
    """A second registration of a number already taken: refused, and kept for reports."""

    KIND: ClassVar[str] = "duplicate"

    key: str  # the op id that tried
    day: date
    service: str
    number: int
    dispenser: str
    issued_at: float
    at: float
    holder: str  # the ticket id that has the number


@dataclass(frozen=True)
class DayMark:
    """The business day the engine is in, and the first day it still holds."""

    KIND: ClassVar[str] = "daymark"

    current: date
    kept_from: date

    day: ClassVar[None] = None

    @property
    def key(self) -> str:
        return "day"


Entity = (
    Ticket | Call | Counter | Appointment | NumberPool | Lease | Visit | DuplicateNumber | DayMark
)
ENTITY_TYPES: dict[str, type[Any]] = {
    cls.KIND: cls
    for cls in (
        Ticket,
        Call,
        Counter,
        Appointment,
        NumberPool,
        Lease,
        Visit,
        DuplicateNumber,
        DayMark,
    )
}


# ---------------------------------------------------------------------------- codec


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(cls: Any) -> TypeAdapter[Any]:
    """pydantic's (de)serializer for a queue class, built once per class."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def to_plain(value: Any) -> Any:
    """Any queue value (entity, result, board, status) as JSON-ready data."""
    return _adapter(type(value)).dump_python(value, mode="json")


def entity_from_plain(kind: str, data: Mapping[str, Any]) -> Entity:
    """Rebuild an entity from :func:`to_plain`'s output; KeyError for an unknown kind."""
    entity: Entity = _adapter(ENTITY_TYPES[kind]).validate_python(data)
    return entity


def from_plain(cls: type[Any], data: Any) -> Any:
    """Rebuild any queue value of class ``cls`` from :func:`to_plain`'s output."""
    return _adapter(cls).validate_python(data)


def entity_day(entity: Entity) -> date | None:
    """The business day an entity belongs to (None for counters and the day mark)."""
    day: date | None = getattr(entity, "day", None)
    return day
