"""What goes into the queue engine (operations) and what comes out (results, query answers).

Every operation is a frozen dataclass with an ``op_id``: the idempotency key. The engine
remembers the result of each op id it applied; applying the same op id again returns that
first result with ``duplicate=True`` and changes nothing, so a dispenser or a counter can
retry a request whose reply it lost. A new button press needs a new op id.

``OPS`` maps each operation's wire name (``kind``) to its class, and :func:`op_from_plain`
builds one from JSON data, so the MQTT service can parse a payload in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from central.queue.codes import QueueCode
from central.queue.model import (
    Appointment,
    Call,
    Entity,
    Lease,
    Ticket,
    TicketState,
    from_plain,
)


@dataclass(frozen=True, kw_only=True)
class Op:
    KIND: ClassVar[str] = ""

    op_id: str


# ------------------------------------------------------------------- a ticket is born


@dataclass(frozen=True, kw_only=True)
class IssueTicket(Op):
    """A dispenser asks central for a number (online). The ticket is ``printing``, not
    callable, until :class:`TicketPrinted`. The business day is central's (``now``)."""

    KIND: ClassVar[str] = "issue_ticket"

    service: str
    dispenser: str
    issued_at: float
    priority: bool = False
    request_id: str = ""


@dataclass(frozen=True, kw_only=True)
class TicketPrinted(Op):
    KIND: ClassVar[str] = "ticket_printed"

    ticket_id: str


@dataclass(frozen=True, kw_only=True)
class TicketVoided(Op):
    """The print failed: the ticket never existed for anybody, and its number is the
    first the next issue of that service and day takes."""

    KIND: ClassVar[str] = "ticket_voided"

    ticket_id: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class LeaseBlock(Op):
    """Reserve the next numbers of a service and day for a dispenser to issue offline.
    ``size`` None: the configured ``lease_size``. Fewer are leased when the range has
    fewer left; none: ``range_exhausted``."""

    KIND: ClassVar[str] = "lease_block"

    dispenser: str
    service: str
    business_day: date
    size: int | None = None


@dataclass(frozen=True, kw_only=True)
class RegisterTicket(Op):
    """A ticket a dispenser issued offline from one of its leased blocks; its business day
    is that of ``issued_at``, and it queues by ``issued_at``."""

    KIND: ClassVar[str] = "register_ticket"

    service: str
    number: int
    dispenser: str
    issued_at: float
    priority: bool = False


# ------------------------------------------------------------------------ appointments


@dataclass(frozen=True, kw_only=True)
class BookAppointment(Op):
    """``code`` is the check-in code, made by the caller (``secrets``; see
    :func:`central.queue.appointments.new_checkin_code`). ``appointment_id`` "" means the
    op id."""

    KIND: ClassVar[str] = "book_appointment"

    service: str
    slot: float
    code: str
    appointment_id: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class CancelAppointment(Op):
    KIND: ClassVar[str] = "cancel_appointment"

    appointment_id: str


@dataclass(frozen=True, kw_only=True)
class CheckIn(Op):
    """An appointment's code typed at a dispenser. Inside the window the appointment gets a
    ticket (``printing``, like :class:`IssueTicket`, then printed or voided; a void puts
    the appointment back to booked)."""

    KIND: ClassVar[str] = "check_in"

    code: str
    dispenser: str
    issued_at: float


# ---------------------------------------------------------------------------- counters


@dataclass(frozen=True, kw_only=True)
class SignIn(Op):
    KIND: ClassVar[str] = "sign_in"

    counter: str
    staff: str


@dataclass(frozen=True, kw_only=True)
class SignOut(Op):
    """Refused (``counter_busy``) while a ticket is called or in service there."""

    KIND: ClassVar[str] = "sign_out"

    counter: str


@dataclass(frozen=True, kw_only=True)
class CallNext(Op):
    """The policy picks among the tickets this counter may call. Refused
    (``counter_busy``) while the counter still holds a ticket: finish, no-show, park or
    transfer it first."""

    KIND: ClassVar[str] = "call_next"

    counter: str


@dataclass(frozen=True, kw_only=True)
class CallTicket(Op):
    """Call a given waiting (or parked) ticket, of any service, unless it was transferred
    to another counter."""

    KIND: ClassVar[str] = "call_ticket"

    counter: str
    ticket_id: str


@dataclass(frozen=True, kw_only=True)
class Recall(Op):
    """Call the counter's called ticket again (a new call id). Once it has been recalled
    ``max_recalls`` times, a further recall marks it a no-show instead."""

    KIND: ClassVar[str] = "recall"

    counter: str


@dataclass(frozen=True, kw_only=True)
class StartService(Op):
    """The called customer arrived. ``ticket_id``, when given, must be the counter's."""

    KIND: ClassVar[str] = "start_service"

    counter: str
    ticket_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class FinishService(Op):
    """Served (from called or in service: a start is implied)."""

    KIND: ClassVar[str] = "finish_service"

    counter: str
    ticket_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class NoShow(Op):
    """The called customer did not come (refused once service started)."""

    KIND: ClassVar[str] = "no_show"

    counter: str
    ticket_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Transfer(Op):
    """Send a ticket (at a counter, waiting or parked) to another service and/or counter;
    it keeps its place in time (``queue_at``). With ``to_counter`` only that counter may
    call it. At least one target is needed."""

    KIND: ClassVar[str] = "transfer"

    ticket_id: str
    to_service: str | None = None
    to_counter: str | None = None


@dataclass(frozen=True, kw_only=True)
class Park(Op):
    """Take a ticket out of the queue for a while (it keeps its place in time)."""

    KIND: ClassVar[str] = "park"

    ticket_id: str


@dataclass(frozen=True, kw_only=True)
class Resume(Op):
    """Back to waiting; a ticket parked by a counter is then for that counter only."""

    KIND: ClassVar[str] = "resume"

    ticket_id: str


@dataclass(frozen=True, kw_only=True)
class Cancel(Op):
    """The customer is gone (any state but printing and closed)."""

    KIND: ClassVar[str] = "cancel"

    ticket_id: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ConfirmCall(Op):
    """A display showed (and announced) a call."""

    KIND: ClassVar[str] = "confirm_call"

    call_id: str
    display: str
    shown_at: float


OPS: dict[str, type[Op]] = {
    cls.KIND: cls
    for cls in (
        IssueTicket,
        TicketPrinted,
        TicketVoided,
        LeaseBlock,
        RegisterTicket,
        BookAppointment,
        CancelAppointment,
        CheckIn,
        SignIn,
        SignOut,
        CallNext,
        CallTicket,
        Recall,
        StartService,
        FinishService,
        NoShow,
        Transfer,
        Park,
        Resume,
        Cancel,
        ConfirmCall,
    )
}


def op_from_plain(kind: str, data: dict[str, Any]) -> Op:
    """Build the operation named ``kind`` from JSON data (pydantic validation: a missing or
    mistyped field raises ``pydantic.ValidationError``, an unknown kind KeyError)."""
    op: Op = from_plain(OPS[kind], data)
    return op


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class OpResult:
    """What an operation did. ``changes`` are the new values of every entity it touched,
    for the store; a duplicate's result is the first one, with no changes."""

    op_id: str
    kind: str  # the op's KIND ("tick" for :meth:`QueueEngine.tick`)
    ok: bool
    code: QueueCode
    at: float  # ``now`` when it was applied
    ticket: Ticket | None = None
    call: Call | None = None
    appointment: Appointment | None = None
    lease: Lease | None = None
    detail: str = ""  # for logs, in English; screens use ``code``
    duplicate: bool = False
    changes: tuple[Entity, ...] = ()


# ------------------------------------------------------------------------ query answers


@dataclass(frozen=True)
class CurrentCall:
    """What a board shows for a counter holding a ticket."""

    counter: str
    counter_name: str
    ticket_id: str
    label: str
    service: str
    state: TicketState  # called or serving
    call_id: str
    called_at: float  # the latest call (or recall)
    recalls: int


@dataclass(frozen=True)
class ServiceLoad:
    service: str
    name: str
    prefix: str
    waiting: int
    estimated_wait: int | None  # seconds for a ticket taken now; None: nobody serves it


@dataclass(frozen=True)
class Board:
    """The board state central publishes (retained) for the displays."""

    day: date
    at: float
    current: tuple[CurrentCall, ...]  # one per counter holding a ticket, config order
    recent: tuple[Call, ...]  # the day's last calls, newest first
    services: tuple[ServiceLoad, ...]
    open_counters: tuple[str, ...]


@dataclass(frozen=True)
class TicketStatus:
    """A ticket as its holder sees it (the status page, the dispenser's print)."""

    ticket_id: str
    label: str
    service: str
    state: TicketState
    ahead: int | None  # people ahead while waiting, else None
    estimated_wait: int | None  # seconds, while waiting
    counter: str | None  # where to go once called
    call_id: str | None


@dataclass(frozen=True)
class Unconfirmed:
    """A call that some displays have not confirmed."""

    call: Call
    missing: frozenset[str]
