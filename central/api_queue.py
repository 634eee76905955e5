"""Central's HTTP API to the queue: staff operations, appointments, the board, figures, and
the status page a ticket's QR code links to.

========  ===================================  ==============================================
method    path                                 answer
========  ===================================  ==============================================
POST      ``/api/queue/ops``                   200 :class:`~entrada.protocol_queue.QueueOpResult`;
                                               409 refused (the result, with its code)
POST      ``/api/queue/appointments``          201 ``{appointment_id, code, slot, ...}``; 409
GET       ``/api/queue/board``                 200 the board (calls, waiting, estimates)
GET       ``/api/queue/stats?by=service``      200 ``{by, figures}`` (or counter, staff)
GET       ``/api/queue/tickets/{ticket_id}``   200 label, state, people ahead, estimated wait
GET       ``/t/{ticket_id}``                   200 a small HTML page refreshing every 15 s
========  ===================================  ==============================================

The queue's state belongs to the central service's owner thread, so every request is
handed to it (:meth:`~central.service.CentralService.on_owner`) and answered by the same
:meth:`~central.queue_desk.QueueDesk.answer` that serves staff over MQTT: the API and
``entrada queue`` cannot disagree. An operation's ``op_id`` makes it idempotent (a retry
with the same one is answered with the first result and ``"duplicate": true``); one is
made when left out. A body or id that is not valid is 422 with the reasons; 503 when the
queue is off (no ``[queue]`` services), central is not running, or the owner thread did
not answer within :data:`ANSWER_TIMEOUT`.

The status page is a screen, so only it turns codes into words (English for now); it has
no script, only ``<meta http-equiv="refresh">``, and stops refreshing once the ticket is
closed.
"""

from __future__ import annotations

import html
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from central.queue.model import CLOSED_STATES, TicketState
from entrada.cli_queue import slot_time
from entrada.protocol_queue import OpId, QueueId, QueueOp, QueueOpResult, TicketId

if TYPE_CHECKING:
    from central.service import CentralService

logger = logging.getLogger(__name__)

#: Longest a request waits for the owner thread, s.
ANSWER_TIMEOUT = 5.0
#: The status page reloads itself this often, s.
PAGE_REFRESH = 15

#: What staff may ask through the API: the counter and appointment operations and the
#: queries (a dispenser's or a display's operations travel as their own messages).
StaffOp = Literal[
    "sign_in",
    "sign_out",
    "call_next",
    "call_ticket",
    "recall",
    "start_service",
    "finish_service",
    "no_show",
    "transfer",
    "park",
    "resume",
    "cancel",
    "book_appointment",
    "cancel_appointment",
    "status",
    "stats",
    "board",
    "unconfirmed",
]
#: Refusals that are the request's fault: 422 rather than 409.
BAD_INPUT = frozenset({"queue.refused.bad_request", "queue.refused.unknown_op"})

_TICKET_ID: TypeAdapter[str] = TypeAdapter(TicketId)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpIn(_Body):
    """A :class:`~entrada.protocol_queue.QueueOp` without its envelope."""

    op_id: OpId | None = None
    op: StaffOp
    args: dict[str, Any] = Field(default_factory=dict)


class AppointmentIn(_Body):
    service: QueueId
    #: The slot: Unix seconds, or ISO 8601 (site-local unless it carries an offset).
    at: Annotated[float, Field(allow_inf_nan=False, ge=0)] | Annotated[str, Field(max_length=40)]
    note: str = Field("", max_length=200)
    #: Retry a booking whose answer was lost with the same op id.
    op_id: OpId | None = None


def _new_op_id() -> str:
    return f"api-{secrets.token_hex(8)}"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON knows")


async def finite_json(request: Request) -> None:
    """Refuse (422) a body with NaN, Infinity or a number too large for a float: Python's
    JSON reader takes them, and they would reach the queue's times (or FastAPI's own 422,
    which cannot encode them and fails with a 500)."""
    body = await request.body()  # cached: FastAPI reads the same bytes
    try:
        json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as err:
        raise HTTPException(422, f"the body is not plain JSON: {err}") from err


def queue_router(
    service: CentralService,
    *,
    clock: Callable[[], float] = time.time,
    timeout: float = ANSWER_TIMEOUT,
) -> APIRouter:
    """The queue's routes over ``service``'s desk; ``clock`` gives Unix time."""
    router = APIRouter()
    qcfg = service.cfg.queue
    tz = qcfg.timezone
    names = {s.id: s.title for s in qcfg.services}
    counters = {c.id: c.title for c in qcfg.counters}

    def ask(op: str, args: dict[str, Any], op_id: str | None = None) -> QueueOpResult:
        request = QueueOp(op_id=op_id or _new_op_id(), op=op, args=args)

        def on_owner() -> QueueOpResult | None:
            desk = service.desk  # read on the owner thread, which sets and clears it
            return None if desk is None else desk.answer(request, clock())

        if not service.running:
            raise HTTPException(503, "central's service is not running")
        try:
            answer = service.on_owner(on_owner, timeout)
        except TimeoutError as err:
            logger.warning("queue %s: no answer from the owner thread in %.1f s", op, timeout)
            raise HTTPException(503, f"the queue did not answer within {timeout:g} s") from err
        if answer is None:
            raise HTTPException(503, "the queue is off: central's config names no services")
        return answer

    def query(what: str, **args: Any) -> dict[str, Any]:
        return ask(what, args).result

    def ticket_status(raw: str) -> dict[str, Any] | None:
        """The desk's status of a valid ticket id (None: not in the queue)."""
        status: dict[str, Any] | None = query("status", ticket_id=raw)["status"]
        if status is not None:
            status["service_name"] = names.get(status["service"], status["service"])
            counter = status.get("counter")
            status["counter_name"] = counters.get(counter, counter) if counter else None
        return status

    @router.post("/api/queue/ops", dependencies=[Depends(finite_json)])
    def operate(body: OpIn) -> JSONResponse:
        args = body.args
        if body.op == "book_appointment" and "slot" in args:
            try:
                args = {**args, "slot": slot_time(args["slot"], tz)}
            except (TypeError, ValueError) as err:
                raise HTTPException(
                    422, [{"loc": ["body", "args", "slot"], "msg": str(err)}]
                ) from err
        result = ask(body.op, args, body.op_id)
        doc = result.model_dump(mode="json")
        if result.ok:
            return JSONResponse(doc)
        if result.code in BAD_INPUT:
            return JSONResponse(doc, status_code=422)
        if result.code.startswith("queue.failed."):
            return JSONResponse(doc, status_code=503)
        return JSONResponse(doc, status_code=409)

    @router.post("/api/queue/appointments", status_code=201, dependencies=[Depends(finite_json)])
    def book(body: AppointmentIn) -> JSONResponse:
        try:
            slot = slot_time(body.at, tz)
        except ValueError as err:
            raise HTTPException(422, [{"loc": ["body", "at"], "msg": str(err)}]) from err
        args = {"service": body.service, "slot": slot, "note": body.note}
        result = ask("book_appointment", args, body.op_id)
        appointment = result.result.get("appointment")
        if not result.ok or appointment is None:
            refusal = {
                "op_id": result.op_id,
                "code": result.code,
                "detail": result.result.get("detail") or result.result.get("reason", ""),
            }
            status = 422 if result.code in BAD_INPUT else 409
            return JSONResponse(refusal, status_code=status)
        local = datetime.fromtimestamp(appointment["slot"], ZoneInfo(tz))
        answer = {
            "appointment_id": appointment["id"],
            "code": appointment["code"],
            "service": appointment["service"],
            "slot": appointment["slot"],
            "slot_local": local.isoformat(timespec="minutes"),
            "op_id": result.op_id,
            "duplicate": result.duplicate,
        }
        return JSONResponse(answer, status_code=200 if result.duplicate else 201)

    @router.get("/api/queue/board")
    def board() -> dict[str, Any]:
        found: dict[str, Any] = query("board")["board"]
        return found

    @router.get("/api/queue/stats")
    def stats(by: Literal["service", "counter", "staff"] = "service") -> dict[str, Any]:
        return query("stats", by=by)

    @router.get("/api/queue/tickets/{ticket_id}")
    def ticket(ticket_id: str) -> dict[str, Any]:
        key = _valid_ticket_id(ticket_id)
        if key is None:
            raise HTTPException(422, f"{ticket_id[:60]!r} is not a ticket id (DAY:SERVICE:NUMBER)")
        status = ticket_status(key)
        if status is None:
            raise HTTPException(404, f"no ticket {key} in the queue")
        return status

    @router.get("/t/{ticket_id}", response_class=HTMLResponse)
    def page(ticket_id: str) -> HTMLResponse:
        key = _valid_ticket_id(ticket_id)
        if key is None:
            return _page(qcfg.site_name, "Not a ticket", ["This link is not a ticket."], 422)
        status = ticket_status(key)
        if status is None:
            return _page(qcfg.site_name, "Ticket not found", ["This ticket is not known."], 404)
        return _page(
            qcfg.site_name,
            status["label"],
            ticket_lines(status),
            refresh=TicketState(status["state"]) not in CLOSED_STATES,
            service=status["service_name"],
        )

    return router


def _valid_ticket_id(raw: str) -> str | None:
    try:
        return _TICKET_ID.validate_python(raw)
    except ValidationError:
        return None


# ------------------------------------------------------------------- the page

STATE_WORDS: dict[str, str] = {
    "printing": "Your ticket is being printed",
    "waiting": "Please wait to be called",
    "called": "Please go to {counter}",
    "serving": "Being served at {counter}",
    "parked": "On hold: staff will call you again",
    "done": "Served. Thank you!",
    "no_show": "Called, but you were not there: please ask at a counter",
    "cancelled": "Cancelled",
    "voided": "This ticket was not issued",
    "expired": "Expired at the end of the day",
}


def wait_words(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return "less than a minute"
    return f"about {math.ceil(seconds / 60)} min"


def ticket_lines(status: dict[str, Any]) -> list[str]:
    """The page's sentences for a ticket status (with ``counter_name``)."""
    words = STATE_WORDS.get(status["state"], status["state"])
    lines = [words.format(counter=status.get("counter_name") or "the counter")]
    if status["state"] == "waiting":
        lines.append(f"People ahead: {status['ahead']}")
        lines.append(f"Estimated wait: {wait_words(status['estimated_wait'])}")
    return lines


def _page(
    site: str,
    title: str,
    lines: list[str],
    status_code: int = 200,
    *,
    refresh: bool = False,
    service: str = "",
) -> HTMLResponse:
    e = html.escape
    head = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
    ]
    if refresh:
        head.append(f'<meta http-equiv="refresh" content="{PAGE_REFRESH}">')
    head += [
        f"<title>{e(title)}{' - ' + e(site) if site else ''}</title>",
        "<style>body{font-family:sans-serif;text-align:center;margin:2em 1em}"
        ".label{font-size:4em;font-weight:bold;margin:.2em}.state{font-size:1.5em}"
        ".small{color:#666;font-size:.8em}</style>",
        "</head><body>",
    ]
    body = [f'<p class="small">{e(site)}</p>'] if site else []
    if service:
        body.append(f"<p>{e(service)}</p>")
    body.append(f'<p class="label">{e(title)}</p>')
    body += [f'<p class="{"state" if i == 0 else "info"}">{e(x)}</p>' for i, x in enumerate(lines)]
    if refresh:
        body.append(f'<p class="small">This page updates every {PAGE_REFRESH} seconds.</p>')
    text = "\n".join([*head, *body, "</body></html>", ""])
    return HTMLResponse(text, status_code=status_code, headers={"Cache-Control": "no-store"})
