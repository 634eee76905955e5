"""The electronic queue's part of the MQTT contract: tickets, number leases, the board and
counter operations.

Where things travel (docs/protocol.md has examples):

- ``entrada/{site}/device/{id}/queue/req`` (dispenser -> central, QoS 1):
  :class:`TicketRequest` (a number, now) or :class:`LeaseRequest` (a block of numbers
  to issue from while central is unreachable);
- ``entrada/{site}/device/{id}/queue/res`` (central -> dispenser, QoS 1):
  :class:`TicketReply` or :class:`LeaseReply`, matched by ``request_id``;
- ``entrada/{site}/queue/board`` (central, retained): :class:`QueueBoard`, what every
  display shows; a display that reboots is right at once;
- ``entrada/{site}/queue/op/req`` (staff: counter terminals, the CLI; MQTT 5 with a
  ResponseTopic under ``entrada/{site}/queue/op/res/{client}``): :class:`QueueOp`,
  answered by :class:`QueueOpResult`.

What must be durable travels as events through the device's outbox (see
:data:`TICKET_PRINTED`, :data:`TICKET_VOIDED`, :data:`CALL_SHOWN`): a printed ticket, a
number given back after a failed print, and a display's confirmation of a call.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from entrada.protocol import STRICT, IsoDate, Message, Topics

#: Ids of services, counters, staff: also topic-safe.
QueueId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
#: Idempotency keys (request ids, op ids).
OpId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:#-]{0,95}$")]
#: A ticket's id on the site: ``{business_day}:{service}:{number}``.
TicketId = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}:[A-Za-z0-9_-]{1,32}:\d{1,6}$")]

#: Event kinds a dispenser or display records in its outbox.
TICKET_PRINTED = "queue.ticket_printed"
TICKET_VOIDED = "queue.ticket_voided"
CALL_SHOWN = "display.call_shown"

#: Most calls and services on a board.
MAX_BOARD_LINES = 200


class QueueTopics:
    """The queue's topics of one site."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    def request(self, device: str) -> str:
        return self.topics.device(device, "queue/req")

    def reply(self, device: str) -> str:
        return self.topics.device(device, "queue/res")

    @property
    def all_requests(self) -> str:
        return self.topics.all_devices("queue/req")

    @property
    def board(self) -> str:
        return f"{self.topics.base}/queue/board"

    @property
    def op_request(self) -> str:
        return f"{self.topics.base}/queue/op/req"

    def op_reply(self, client: str) -> str:
        return f"{self.topics.base}/queue/op/res/{client}"


# ------------------------------------------------------------------ dispenser


class TicketRequest(Message):
    """A customer pressed a service button: give a number now. ``request_id`` makes a
    repeated request (a redelivery, a retry) get the same ticket."""

    type: Literal["ticket_request"] = "ticket_request"
    request_id: OpId
    service: QueueId
    priority: bool = False
    #: An appointment's check-in code (the ticket then goes ahead of walk-ins).
    checkin_code: str | None = Field(default=None, pattern=r"^[0-9A-Z]{4,12}$")
    issued_at: float


class LeaseRequest(Message):
    """Reserve ``size`` numbers of a service and business day for offline issuing."""

    type: Literal["lease_request"] = "lease_request"
    request_id: OpId
    service: QueueId
    business_day: IsoDate
    size: int = Field(ge=1, le=1000)


class TicketReply(Message):
    type: Literal["ticket_reply"] = "ticket_reply"
    request_id: OpId
    ok: bool
    code: str = Field(max_length=64)
    service: QueueId
    ticket_id: TicketId | None = None
    number: str | None = Field(default=None, max_length=16)
    business_day: IsoDate | None = None
    #: People waiting ahead of this ticket, and the estimated wait in seconds.
    ahead: int = Field(default=0, ge=0)
    est_wait_s: int | None = Field(default=None, ge=0)


class LeaseReply(Message):
    type: Literal["lease_reply"] = "lease_reply"
    request_id: OpId
    ok: bool
    code: str = Field(max_length=64)
    service: QueueId
    business_day: IsoDate
    first: int | None = Field(default=None, ge=0)
    last: int | None = Field(default=None, ge=0)


# ---------------------------------------------------------------------- board


class BoardCall(BaseModel):
    model_config = STRICT

    call_id: str = Field(max_length=128)
    ticket: str = Field(max_length=16)
    service: QueueId
    counter: QueueId
    counter_name: str = Field(max_length=64)
    called_at: float
    recall: int = Field(default=0, ge=0)


class BoardService(BaseModel):
    model_config = STRICT

    service: QueueId
    name: str = Field(max_length=64)
    prefix: str = Field(max_length=4)
    #: Digits of a number (the width of the service's range): offline tickets are
    #: printed in the same form as central's.
    digits: int = Field(default=3, ge=1, le=6)
    waiting: int = Field(ge=0)
    est_wait_s: int | None = Field(default=None, ge=0)


class QueueBoard(Message):
    """The whole board, retained: current calls (one per counter holding a ticket, in the order
    of central's counters), the last calls (newest first), and per service the waiting
    count and estimated wait. ``seq`` grows with every change, so a display ignores an
    older board that arrives late."""

    type: Literal["queue_board"] = "queue_board"
    seq: int = Field(ge=0)
    ts: float
    site_name: str = Field(max_length=128)
    business_day: IsoDate
    #: When the business day ends (Unix time): a dispenser offline across it switches to
    #: the next day's leased numbers.
    day_ends_at: float
    calls: list[BoardCall] = Field(default_factory=list, max_length=MAX_BOARD_LINES)
    recent: list[BoardCall] = Field(default_factory=list, max_length=MAX_BOARD_LINES)
    services: list[BoardService] = Field(default_factory=list, max_length=MAX_BOARD_LINES)
    ticker: str = Field(default="", max_length=1000)


# ----------------------------------------------------------------- operations


class QueueOp(Message):
    """A counter operation. ``op_id`` makes it idempotent: the same op_id is answered with
    the first result and ``duplicate`` set."""

    type: Literal["queue_op"] = "queue_op"
    op_id: OpId
    #: An operation of central's queue engine (``call_next``, ``recall``, ...) or a query
    #: (``status``, ``stats``, ``board``, ``unconfirmed``).
    op: str = Field(pattern=r"^[a-z][a-z_]{0,31}$")
    args: dict[str, Any] = Field(default_factory=dict)


class QueueOpResult(Message):
    type: Literal["queue_op_result"] = "queue_op_result"
    op_id: OpId
    ok: bool
    code: str = Field(max_length=64)
    duplicate: bool = False
    result: dict[str, Any] = Field(default_factory=dict)
    ts: float
