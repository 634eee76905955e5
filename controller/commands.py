"""Technicians' commands to a device: MQTT 5 request/response, run at most once.

A requester (``entrada tech cmd``, central) publishes a
:class:`~entrada.protocol.CommandRequest` on the device's ``cmd/req`` with the MQTT 5
properties ResponseTopic (the device's own ``cmd/res``), CorrelationData and
MessageExpiryInterval. The broker drops a request that waited too long; the payload's
``expires`` lets the device refuse one the broker kept anyway. :class:`CommandDesk` takes
each request on the owner thread and says what to answer (:class:`Reply`); the runtime
publishes it.

Every command id is answered once and then remembered, in the device's SQLite file, with
its answer: a redelivery (a QoS 1 duplicate, a retry that reuses the id, the same request
after a daemon restart) does not run again and gets the first answer with
``duplicate: true``. The row is written *before* the handler runs, so a daemon that dies
mid-command answers a later redelivery ``cmd.interrupted`` rather than running it twice:
an "open gate" happens at most once. Rows are kept ``keep_seconds`` (a day); ``expires``
may lie at most ``max_ahead`` (an hour) in the future, so every command that could still
run is remembered.

Refused, and never run: a payload that is not a valid request (answered with the
:class:`~entrada.codes.Rejection` code and the reason), a retained request, a response
topic outside this device's subtree (answered on the device's own ``cmd/res`` instead, so
a requester cannot make the device publish elsewhere), an expired command, an unknown
name, arguments that do not fit the command's model (:data:`ARG_MODELS`).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from entrada import protocol
from entrada.codes import Rejection
from entrada.errors import EntradaError, ProtocolError
from entrada.logutil import ThrottledLog

logger = logging.getLogger(__name__)

#: The commands a technician can send. Each device supplies handlers for those it can do;
#: a name it has no handler for is answered ``reject.unknown_command``.
COMMAND_NAMES = (
    "open-gate",
    "identify",
    "resync",
    "print-test",
    "diagnostics",
    "restart",
    "logs",
)
#: Furthest in the future a command's ``expires`` may lie (beyond: refused).
MAX_AHEAD = 3600.0
#: How long an answered command id is remembered (more than :data:`MAX_AHEAD`).
KEEP_SECONDS = 86400.0
#: Old rows are pruned at most this often.
PRUNE_EVERY = 60.0
#: Most log lines one ``logs`` command returns.
MAX_LOG_LINES = 500
#: A request's ``id`` and ``name``, as :class:`~entrada.protocol.CommandRequest` has them.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: Room left in an answer for the envelope around ``result``.
_RESULT_ROOM = protocol.MAX_PAYLOAD_BYTES - 4096

SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    at REAL NOT NULL,
    -- the CommandResponse as sent (JSON); NULL while the command runs
    response TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commands_at ON commands (at);
"""


class CommandCode(StrEnum):
    """Outcomes of a command that ran (handlers may return codes of their own)."""

    DONE = "cmd.done"
    #: The handler failed (a driver error, a bug); ``result.reason`` says what.
    FAILED = "cmd.failed"
    #: The daemon stopped while the command ran; it is not run again.
    INTERRUPTED = "cmd.interrupted"
    #: The result would not fit in one MQTT message.
    RESULT_TOO_LARGE = "cmd.result_too_large"


class CommandRefusal(StrEnum):
    """Why a command was refused (besides :class:`~entrada.codes.Rejection`'s codes)."""

    BAD_ARGS = "reject.bad_args"
    #: The request named a response topic other than this device's ``cmd/res``.
    RESPONSE_TOPIC = "reject.response_topic"
    #: ``expires`` further ahead than :data:`MAX_AHEAD`.
    EXPIRES_TOO_FAR = "reject.expires_too_far"
    #: A retained request (it would run again on every reconnect).
    RETAINED = "reject.retained"


# ---------------------------------------------------------------- arguments

_ARGS = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class OpenGateArgs(BaseModel):
    """Open the gate once. ``seconds``: relay pulse (default: the gate's configured one)."""

    model_config = _ARGS

    seconds: float | None = Field(None, gt=0, le=30)


class IdentifyArgs(BaseModel):
    """Blink and beep for ``seconds``, so a technician finds the device in a row of them."""

    model_config = _ARGS

    seconds: float = Field(5.0, gt=0, le=120)


class ResyncArgs(BaseModel):
    """Catch up with central's catalog now; ``full``: take a whole snapshot."""

    model_config = _ARGS

    full: bool = False


class PrintTestArgs(BaseModel):
    """Print a test ticket, with ``text`` on it."""

    model_config = _ARGS

    text: str = Field("", max_length=200)


class DiagnosticsArgs(BaseModel):
    """Counters, faults, versions, outbox depth, clock."""

    model_config = _ARGS


class RestartArgs(BaseModel):
    """Stop the daemon cleanly after answering; systemd starts it again."""

    model_config = _ARGS


class LogsArgs(BaseModel):
    """The last ``lines`` log lines (:class:`entrada.logring.LogRing`), at or above
    ``level`` when given."""

    model_config = _ARGS

    lines: int = Field(100, ge=1, le=MAX_LOG_LINES)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = None


#: The argument model of each command.
ARG_MODELS: dict[str, type[BaseModel]] = {
    "open-gate": OpenGateArgs,
    "identify": IdentifyArgs,
    "resync": ResyncArgs,
    "print-test": PrintTestArgs,
    "diagnostics": DiagnosticsArgs,
    "restart": RestartArgs,
    "logs": LogsArgs,
}


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class CommandOutcome:
    """What a handler did: ``code`` is stable (e.g. ``cmd.done``), ``result`` is JSON."""

    ok: bool
    code: str
    result: dict[str, Any] = field(default_factory=dict)


#: ``handler(args, now)``: runs on the owner thread; ``args`` is an instance of the
#: command's model in :data:`ARG_MODELS`. It may raise EntradaError (answered
#: ``cmd.failed``); it must not block (a restart asks the runtime to stop, and returns).
CommandHandler = Callable[[Any, float], CommandOutcome]


@dataclass(frozen=True)
class Reply:
    """What to publish: QoS 1, not retained, on ``topic``, with ``correlation`` copied into
    the MQTT 5 CorrelationData property (:meth:`properties`)."""

    topic: str
    payload: bytes
    correlation: bytes | None
    response: protocol.CommandResponse
    #: Whether a handler ran for this request (False: refused or a duplicate).
    ran: bool = False

    def properties(self) -> Properties:
        props = Properties(PacketTypes.PUBLISH)
        if self.correlation is not None:
            props.CorrelationData = self.correlation
        return props


class CommandDesk:
    """Takes command requests for one device and remembers what it answered.

    Uses the device store's connection (owner thread only); its table lives in the same
    file, so de-duplication survives a daemon restart.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        device_id: str,
        handlers: Mapping[str, CommandHandler],
        *,
        topics: protocol.Topics,
        models: Mapping[str, type[BaseModel]] = ARG_MODELS,
        keep_seconds: float = KEEP_SECONDS,
        max_ahead: float = MAX_AHEAD,
    ) -> None:
        if keep_seconds <= max_ahead:
            raise ValueError("keep_seconds must exceed max_ahead: a runnable id is never forgotten")
        missing = sorted(set(handlers) - set(models))
        if missing:
            raise ValueError(f"no argument model for command(s) {', '.join(missing)}")
        self.device_id = device_id
        self.response_topic = topics.cmd_response(device_id)
        self.keep_seconds = keep_seconds
        self.max_ahead = max_ahead
        self._conn = conn
        self._handlers = dict(handlers)
        self._models = dict(models)
        self._rate = ThrottledLog(logger)
        self._next_prune = float("-inf")
        conn.executescript(SCHEMA)

    @property
    def names(self) -> tuple[str, ...]:
        """The commands this device runs."""
        return tuple(sorted(self._handlers))

    def on_request(
        self,
        payload: bytes,
        response_topic: str | None,
        correlation: bytes | None,
        now: float,
        *,
        retained: bool = False,
    ) -> Reply | None:
        """Decide, run (at most once) and say what to answer. None: nothing to answer (an
        empty payload, e.g. someone clearing a retained request)."""
        if not payload:
            return None
        if now >= self._next_prune:
            self.prune(now)
        if response_topic is not None and response_topic != self.response_topic:
            self._rate.warning(
                CommandRefusal.RESPONSE_TOPIC,
                "command refused: response topic %r is not %s",
                response_topic[:200],
                self.response_topic,
            )
            return self._refusal(
                payload,
                correlation,
                now,
                CommandRefusal.RESPONSE_TOPIC,
                f"answers go to {self.response_topic} only",
            )
        try:
            request = protocol.decode(protocol.CommandRequest, payload)
        except ProtocolError as err:
            code = protocol.rejection_code(err)
            self._rate.warning(code, "command refused: %s", err)
            return self._refusal(payload, correlation, now, code, str(err))
        if retained:
            return self._refusal(
                payload,
                correlation,
                now,
                CommandRefusal.RETAINED,
                "a command request must not be retained; clear it",
            )

        known = self._conn.execute(
            "SELECT response FROM commands WHERE id = ?", (request.id,)
        ).fetchone()
        if known is not None:
            return self._duplicate(request, known[0], correlation, now)

        checked = self._check(request, now)
        if isinstance(checked, tuple):
            code, reason = checked
            self._rate.warning(
                code, "command %s (%s) refused: %s", request.name, request.id, reason
            )
            response = self._response(request, False, code, {"reason": reason}, now)
            self._remember(request, now, response)
            return self._reply(response, correlation)

        self._conn.execute(
            "INSERT INTO commands (id, name, at, response) VALUES (?, ?, ?, NULL)",
            (request.id, request.name, now),
        )
        response = self._answer(request, self._run(request, checked, now), now)
        self._remember(request, now, response)
        logger.info(
            "command %s (%s): %s%s",
            request.name,
            request.id,
            response.code,
            "" if response.ok else f" {response.result.get('reason', '')}".rstrip(),
        )
        return self._reply(response, correlation, ran=True)

    def prune(self, now: float) -> int:
        """Forget ids answered more than ``keep_seconds`` ago; the number forgotten."""
        self._next_prune = now + PRUNE_EVERY
        cur = self._conn.execute("DELETE FROM commands WHERE at < ?", (now - self.keep_seconds,))
        return cur.rowcount

    # ----------------------------------------------------------------- inside

    def _check(self, request: protocol.CommandRequest, now: float) -> BaseModel | tuple[str, str]:
        """The command's arguments if it may run, else why not: (code, reason)."""
        if request.expires < now:
            return Rejection.EXPIRED, f"expired {now - request.expires:.1f} s ago"
        if request.expires > now + self.max_ahead:
            return (
                CommandRefusal.EXPIRES_TOO_FAR,
                f"expires {request.expires - now:.0f} s ahead; at most {self.max_ahead:.0f} s",
            )
        if request.name not in self._handlers:
            known = ", ".join(self.names) or "none"
            return Rejection.UNKNOWN_COMMAND, f"unknown command {request.name!r}; known: {known}"
        try:
            return self._models[request.name].model_validate(request.args)
        except ValidationError as err:
            detail = "; ".join(
                f"{'.'.join(repr(p) if p == '' else str(p) for p in e['loc']) or 'args'}: "
                f"{e['msg']}"
                for e in err.errors()[:10]
            )
            return CommandRefusal.BAD_ARGS, detail

    def _run(self, request: protocol.CommandRequest, args: BaseModel, now: float) -> CommandOutcome:
        try:
            outcome = self._handlers[request.name](args, now)
        except sqlite3.DatabaseError:
            raise  # the runtime rebuilds its store; the id stays "interrupted"
        except EntradaError as err:
            logger.error("command %s (%s) failed: %s", request.name, request.id, err)
            return CommandOutcome(False, CommandCode.FAILED, {"reason": str(err)})
        except Exception as err:  # a faulty command must not stop the device
            logger.exception("command %s (%s) failed", request.name, request.id)
            return CommandOutcome(False, CommandCode.FAILED, {"reason": f"internal error: {err}"})
        if not isinstance(outcome, CommandOutcome):
            logger.error("command %s handler returned %r", request.name, outcome)
            return CommandOutcome(False, CommandCode.FAILED, {"reason": "handler gave no outcome"})
        return outcome

    def _response(
        self,
        request: protocol.CommandRequest,
        ok: bool,
        code: str,
        result: dict[str, Any],
        now: float,
    ) -> protocol.CommandResponse:
        return protocol.CommandResponse(
            id=request.id, name=request.name, ok=ok, code=str(code), result=result, ts=now
        )

    def _answer(
        self, request: protocol.CommandRequest, outcome: CommandOutcome, now: float
    ) -> protocol.CommandResponse:
        """The response to a command that ran: the outcome, or a failure if the handler's
        outcome is malformed, its result not JSON, or too large for one message."""
        try:
            response = self._response(request, outcome.ok, outcome.code, outcome.result, now)
        except ValidationError as err:
            logger.error("command %s handler gave a malformed outcome: %s", request.name, err)
            return self._response(
                request,
                False,
                CommandCode.FAILED,
                {"reason": "handler gave a malformed outcome"},
                now,
            )
        try:
            size = len(json.dumps(response.result, allow_nan=False).encode("utf-8"))
        except (TypeError, ValueError, RecursionError) as err:
            return response.model_copy(
                update={
                    "ok": False,
                    "code": CommandCode.FAILED.value,
                    "result": {"reason": f"result is not JSON: {err}"},
                }
            )
        if size > _RESULT_ROOM:
            return response.model_copy(
                update={
                    "ok": False,
                    "code": CommandCode.RESULT_TOO_LARGE.value,
                    "result": {"reason": f"result of {size} bytes; at most {_RESULT_ROOM}"},
                }
            )
        return response

    def _remember(
        self, request: protocol.CommandRequest, now: float, response: protocol.CommandResponse
    ) -> None:
        self._conn.execute(
            "INSERT INTO commands (id, name, at, response) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET response = excluded.response",
            (request.id, request.name, now, response.model_dump_json()),
        )

    def _duplicate(
        self,
        request: protocol.CommandRequest,
        stored: str | None,
        correlation: bytes | None,
        now: float,
    ) -> Reply:
        first: protocol.CommandResponse | None = None
        if stored is not None:
            try:
                first = protocol.CommandResponse.model_validate_json(stored)
            except ValidationError as err:
                logger.error("stored answer to command %s is unreadable: %s", request.id, err)
        if first is None:  # the daemon stopped while it ran
            first = self._response(
                request,
                False,
                CommandCode.INTERRUPTED,
                {"reason": "the device stopped while the command ran; it is not run again"},
                now,
            )
        logger.info(
            "command %s (%s) again: answered with the first result", request.name, request.id
        )
        return self._reply(first.model_copy(update={"duplicate": True}), correlation)

    def _refusal(
        self, payload: bytes, correlation: bytes | None, now: float, code: str, reason: str
    ) -> Reply:
        """An answer (never remembered) to a request that is not valid as a whole."""
        ident, name = _id_and_name(payload)
        response = protocol.CommandResponse(
            id=ident, name=name, ok=False, code=str(code), result={"reason": reason[:2000]}, ts=now
        )
        return self._reply(response, correlation)

    def _reply(
        self, response: protocol.CommandResponse, correlation: bytes | None, *, ran: bool = False
    ) -> Reply:
        return Reply(self.response_topic, protocol.encode(response), correlation, response, ran)


def _id_and_name(payload: bytes) -> tuple[str, str]:
    """The request's ``id`` and ``name`` when they can be read and are well formed, so a
    requester can tell which request was refused (else empty strings)."""
    try:
        obj = json.loads(payload[: protocol.MAX_PAYLOAD_BYTES])
    except (ValueError, RecursionError):
        return "", ""
    if not isinstance(obj, dict):
        return "", ""
    ident, name = obj.get("id"), obj.get("name")
    return (
        ident if isinstance(ident, str) and _ID_RE.fullmatch(ident) else "",
        name if isinstance(name, str) and _NAME_RE.fullmatch(name) else "",
    )


def logs_handler(tail: Callable[[int, str | None], list[str]]) -> CommandHandler:
    """The ``logs`` command over ``tail(lines, level)`` (e.g. ``LogRing.tail``)."""

    def handle(args: LogsArgs, now: float) -> CommandOutcome:
        return CommandOutcome(True, CommandCode.DONE, {"lines": tail(args.lines, args.level)})

    return handle
