"""Central's queue on the wire: the engine (central/queue/) and its store, fed by MQTT.

The central service's owner thread calls this desk; nothing here runs on another thread.

- Dispensers' requests (``device/{id}/queue/req``): a number now (:class:`IssueTicket`,
  or :class:`CheckIn` with an appointment's code) or a block of numbers for offline
  issuing (:class:`LeaseBlock`); answered on ``device/{id}/queue/res``.
- Devices' events, before they are stored and acknowledged: ``queue.ticket_printed``
  (online: :class:`TicketPrinted`; offline: :class:`RegisterTicket`, placed by its issue
  time), ``queue.ticket_voided`` and the displays' ``display.call_shown``
  (:class:`ConfirmCall`). The event's id is the operation's id, so an event sent twice is
  applied once; and the operation is saved before the event is acknowledged, so a crash
  in between only makes the device send it again.
- Staff operations (``queue/op/req``, MQTT 5 request/response): every engine operation by
  its name, plus ``status`` (a ticket), ``stats`` and ``board``.
- The board (``queue/board``, retained) is published after every change that shows, and
  once a minute (waiting times move on their own).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from central.queue.appointments import new_checkin_code
from central.queue.businessday import day_start
from central.queue.engine import QueueEngine
from central.queue.model import Ticket, TicketState, to_plain
from central.queue.ops import (
    OPS,
    CheckIn,
    ConfirmCall,
    IssueTicket,
    LeaseBlock,
    Op,
    OpResult,
    RegisterTicket,
    TicketPrinted,
    TicketVoided,
    op_from_plain,
)
from central.queue.settings import QueueSection
from central.queue.store import QueueStore
from entrada.errors import ProtocolError
from entrada.logutil import ThrottledLog
from entrada.mqtt import Incoming, MqttLink
from entrada.protocol import Event, Topics, decode, decode_one_of, encode, rejection_code
from entrada.protocol_queue import (
    CALL_SHOWN,
    TICKET_PRINTED,
    TICKET_VOIDED,
    BoardCall,
    BoardService,
    LeaseReply,
    LeaseRequest,
    QueueBoard,
    QueueOp,
    QueueOpResult,
    QueueTopics,
    TicketReply,
    TicketRequest,
)

logger = logging.getLogger(__name__)

Publish = Callable[..., bool]
TICK_EVERY = 1.0  # engine tick (new day, appointment windows), s
BOARD_EVERY = 60.0  # board refresh without changes (estimated waits move), s
UNCONFIRMED_EVERY = 10.0  # look for calls no board confirmed, s
#: A board offline this long is retired: calls made later are no longer asked of it.
RETIRE_AFTER = 3600.0
QUERIES = ("status", "stats", "board", "unconfirmed")
#: Operations only devices cause (through their requests and events), never staff.
DEVICE_OPS = frozenset(
    {
        IssueTicket.KIND,
        TicketPrinted.KIND,
        TicketVoided.KIND,
        LeaseBlock.KIND,
        RegisterTicket.KIND,
        CheckIn.KIND,
        ConfirmCall.KIND,
    }
)


class QueueDesk:
    """The site's queue, served over MQTT (owner thread only)."""

    def __init__(self, cfg: QueueSection, data_dir: Path, topics: Topics) -> None:
        self.cfg = cfg
        self.topics = QueueTopics(topics)
        self.store = QueueStore(Path(data_dir) / "queue.db")
        self.engine = QueueEngine(cfg, snapshot=self.store.load())
        self._digits = {s.id: len(str(s.last)) for s in cfg.services}
        self._refused = ThrottledLog(logger)
        self._board_dirty = True
        self._next_tick = 0.0
        self._next_board = 0.0
        self._next_unconfirmed = 0.0
        self._reported: set[str] = set()
        self._seq = 0
        #: Display boards: when each came online, and went offline if it did (a board is
        #: expected to confirm the calls made while it was online).
        self._boards: dict[str, tuple[float, float | None]] = {}
        self.ops_applied = 0

    @property
    def enabled(self) -> bool:
        return bool(self.cfg.services)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.topics.all_requests, 1), (self.topics.op_request, 1)]

    def close(self) -> None:
        self.store.close()

    # ----------------------------------------------------------------- engine

    def apply(self, op: Op, now: float) -> OpResult:
        """Apply and save ``op``; a store failure reloads the engine from the store (the
        operation is then not done: its sender retries with the same id)."""
        result = self.engine.apply(op, now)
        if result.duplicate:
            return result
        try:
            self.store.save(result)
        except sqlite3.Error as err:
            logger.error("saving queue operation %s failed: %s; reloading", op.op_id, err)
            self.engine = QueueEngine(self.cfg, snapshot=self.store.load())
            raise
        self.ops_applied += 1
        if result.ok:
            self._board_dirty = True
        return result

    def _apply_quietly(self, op: Op, now: float) -> OpResult | None:
        try:
            result = self.apply(op, now)
        except sqlite3.Error:
            return None
        if not result.ok and not result.duplicate:
            self._refused.warning(
                ("op", str(result.code)),
                "queue %s refused: %s %s",
                op.KIND,
                result.code,
                result.detail,
            )
        return result

    # --------------------------------------------------------------- messages

    def handles(self, msg: Incoming) -> bool:
        """True when ``msg`` is the queue's (and then it has been dealt with)."""
        if msg.topic == self.topics.op_request:
            return True
        parsed = self.topics.topics.parse_device_topic(msg.topic)
        return parsed is not None and parsed[1] == "queue/req"

    def on_message(self, msg: Incoming, publish: Publish, now: float) -> None:
        try:
            if msg.topic == self.topics.op_request:
                self._on_op(msg, publish, now)
                return
            parsed = self.topics.topics.parse_device_topic(msg.topic)
            if parsed is None:
                return
            device = parsed[0]
            request = decode_one_of((TicketRequest, LeaseRequest), msg.payload)
            if isinstance(request, TicketRequest):
                self._on_ticket_request(device, request, publish, now)
            elif isinstance(request, LeaseRequest):
                self._on_lease_request(device, request, publish, now)
        except ProtocolError as err:
            self._refused.warning(
                ("queue", rejection_code(err)), "queue message on %s refused: %s", msg.topic, err
            )

    def _on_ticket_request(
        self, device: str, req: TicketRequest, publish: Publish, now: float
    ) -> None:
        op: Op
        if req.checkin_code is not None:
            op = CheckIn(
                op_id=req.request_id,
                code=req.checkin_code,
                dispenser=device,
                issued_at=req.issued_at,
            )
        else:
            op = IssueTicket(
                op_id=req.request_id,
                service=req.service,
                dispenser=device,
                issued_at=req.issued_at,
                priority=req.priority,
                request_id=req.request_id,
            )
        result = self._apply_quietly(op, now)
        if result is None:
            return  # not saved: the dispenser falls back on its leased numbers
        ticket = result.ticket
        fields: dict[str, Any] = {}
        if result.ok and ticket is not None:
            ahead, wait = self._ahead(ticket, now)
            fields = {
                "ticket_id": ticket.id,
                "number": ticket.label,
                "business_day": ticket.day.isoformat(),
                "ahead": ahead,
                "est_wait_s": wait,
            }
        # A check-in's service is the appointment's (the request's is a placeholder).
        service = req.service
        if ticket is not None:
            service = ticket.service
        elif result.appointment is not None:
            service = result.appointment.service
        reply = TicketReply(
            request_id=req.request_id,
            ok=result.ok and ticket is not None,
            code=str(result.code),
            service=service,
            **fields,
        )
        publish(self.topics.reply(device), encode(reply), qos=1)

    def _ahead(self, ticket: Ticket, now: float) -> tuple[int, int | None]:
        """People ahead of a new ticket (still "printing") and its estimated wait (s).

        A walk-in has every waiting ticket of its service ahead of it. An appointment goes
        ahead of every walk-in: only the appointments queued before it (by slot) are ahead,
        and the service's estimate is scaled to them (it grows in proportion to the
        waiting count)."""
        load = self.engine.service_load(ticket.service, now)
        if load is None:
            return 0, None
        if ticket.appointment is None:
            return load.waiting, load.estimated_wait
        ahead = sum(
            1
            for t in self.engine.tickets()
            if t.state is TicketState.WAITING
            and t.service == ticket.service
            and t.appointment is not None
            and t.order < ticket.order
        )
        wait = load.estimated_wait
        if wait is not None and load.waiting:
            wait = round(wait * ahead / load.waiting)
        return ahead, wait

    def _on_lease_request(
        self, device: str, req: LeaseRequest, publish: Publish, now: float
    ) -> None:
        from datetime import date

        op = LeaseBlock(
            op_id=req.request_id,
            dispenser=device,
            service=req.service,
            business_day=date.fromisoformat(req.business_day),
            size=req.size,
        )
        result = self._apply_quietly(op, now)
        if result is None:
            return
        lease = result.lease
        reply = LeaseReply(
            request_id=req.request_id,
            ok=result.ok and lease is not None,
            code=str(result.code),
            service=req.service,
            business_day=req.business_day,
            first=lease.first if lease is not None else None,
            last=lease.last if lease is not None else None,
        )
        publish(self.topics.reply(device), encode(reply), qos=1)

    # ------------------------------------------------------------------ events

    def on_events(self, device: str, events: list[Event], now: float) -> bool:
        """Apply the queue's events of one batch; False when one could not be saved (the
        batch must then not be acknowledged)."""
        for event in events:
            op = self._op_of(device, event)
            if op is not None and self._apply_quietly(op, now) is None:
                return False
        return True

    def _op_of(self, device: str, event: Event) -> Op | None:
        data = event.data
        op_id = f"ev:{event.id}"
        try:
            if event.kind == TICKET_PRINTED:
                if not data.get("offline"):
                    return TicketPrinted(op_id=op_id, ticket_id=str(data["ticket_id"]))
                _day, service, number = str(data["ticket_id"]).split(":")
                return RegisterTicket(
                    op_id=op_id,
                    service=service,
                    number=int(number),
                    dispenser=device,
                    issued_at=float(data["issued_at"]),
                    priority=bool(data.get("priority", False)),
                )
            if event.kind == TICKET_VOIDED:
                return TicketVoided(
                    op_id=op_id,
                    ticket_id=str(data["ticket_id"]),
                    reason=str(data.get("reason", "")),
                )
            if event.kind == CALL_SHOWN:
                return ConfirmCall(
                    op_id=op_id,
                    call_id=str(data["call_id"]),
                    display=device,
                    shown_at=float(data.get("shown_at") or event.ts),
                )
        except (KeyError, TypeError, ValueError) as err:
            self._refused.warning(
                ("event", event.kind), "queue event %s of %s unusable: %s", event.kind, device, err
            )
        return None

    # ---------------------------------------------------------------- staff ops

    def _on_op(self, msg: Incoming, publish: Publish, now: float) -> None:
        request = decode(QueueOp, msg.payload)
        reply_to = msg.response_topic
        if reply_to is not None and not reply_to.startswith(self.topics.op_reply("")):
            self._refused.warning(("op", "reply"), "queue op answer topic %s refused", reply_to)
            reply_to = None
        result = self.answer(request, now)
        if reply_to is not None:
            publish(reply_to, encode(result), qos=1, correlation=msg.correlation)

    def answer(self, request: QueueOp, now: float) -> QueueOpResult:
        """Carry out one staff operation or query (also the API's and tests' way in)."""

        def result(
            ok: bool, code: str, body: dict[str, Any], duplicate: bool = False
        ) -> QueueOpResult:
            return QueueOpResult(
                op_id=request.op_id, ok=ok, code=code, duplicate=duplicate, result=body, ts=now
            )

        if request.op in QUERIES:
            return result(True, "queue.answered", self.query(request.op, request.args, now))
        if request.op not in OPS or request.op in DEVICE_OPS:
            known = sorted({*OPS, *QUERIES} - DEVICE_OPS)
            return result(False, "queue.refused.unknown_op", {"known": known})
        args = dict(request.args)
        if request.op == "book_appointment" and "code" not in args:
            args["code"] = new_checkin_code()
        try:
            op = op_from_plain(request.op, {**args, "op_id": request.op_id})
        except ValidationError as err:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            return result(False, "queue.refused.bad_request", {"reason": reason})
        try:
            done = self.apply(op, now)
        except sqlite3.Error as err:
            return result(False, "queue.failed.store", {"reason": str(err)})
        body: dict[str, Any] = {"detail": done.detail}
        for name in ("ticket", "call", "appointment", "lease"):
            value = getattr(done, name)
            if value is not None:
                body[name] = to_plain(value)
        return result(done.ok, str(done.code), body, done.duplicate)

    def query(self, what: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        if what == "status":
            status = self.engine.ticket_status(str(args.get("ticket_id", "")), now)
            return {"status": None if status is None else to_plain(status)}
        if what == "stats":
            by = str(args.get("by", "service"))
            if by not in ("service", "counter", "staff"):
                by = "service"
            return {"by": by, "figures": to_plain(self.engine.stats(by))}  # type: ignore[arg-type]
        if what == "unconfirmed":
            return {"calls": [to_plain(u) for u in self.unconfirmed(now)]}
        return {"board": to_plain(self.engine.board(now, self.cfg.recent_calls))}

    # ------------------------------------------------------------------- board

    def board_message(self, now: float) -> QueueBoard:
        board = self.engine.board(now, self.cfg.recent_calls)
        day_end = day_start(board.day + timedelta(days=1), self.cfg.timezone, self.cfg.day_boundary)
        names = {c.id: c.name for c in self.cfg.counters}
        self._seq = max(self._seq + 1, int(now * 1000))
        return QueueBoard(
            seq=self._seq,
            ts=now,
            site_name=self.cfg.site_name,
            business_day=board.day.isoformat(),
            day_ends_at=day_end,
            calls=[
                BoardCall(
                    call_id=c.call_id,
                    ticket=c.label,
                    service=c.service,
                    counter=c.counter,
                    counter_name=c.counter_name,
                    called_at=c.called_at,
                    recall=c.recalls,
                )
                for c in board.current
                if c.call_id
            ],
            recent=[
                BoardCall(
                    call_id=c.call_id,
                    ticket=c.label,
                    service=c.service,
                    counter=c.counter,
                    counter_name=names.get(c.counter, c.counter),
                    called_at=c.called_at,
                    recall=c.recall,
                )
                for c in board.recent
            ],
            services=[
                BoardService(
                    service=s.service,
                    name=s.name,
                    prefix=s.prefix,
                    digits=self._digits.get(s.service, 3),
                    waiting=s.waiting,
                    est_wait_s=s.estimated_wait,
                )
                for s in board.services
            ],
            ticker=self.cfg.ticker,
        )

    def publish_board(self, publish: Publish, now: float, mono: float) -> None:
        if publish(self.topics.board, encode(self.board_message(now)), qos=1, retain=True):
            self._board_dirty = False
            self._next_board = mono + BOARD_EVERY

    def board_changed(self) -> None:
        """The board must go out again (a reconnect: the broker may have lost it)."""
        self._board_dirty = True

    def pump(self, publish: Publish, now: float, mono: float) -> None:
        """Once per pass of the owner loop: time-driven work, then the board if due."""
        if mono >= self._next_tick:
            self._next_tick = mono + TICK_EVERY
            result = self.engine.tick(now)
            if result.changes:
                try:
                    self.store.save(result)
                    self._board_dirty = True
                except sqlite3.Error as err:
                    logger.error("saving the queue's tick failed: %s", err)
                    self.engine = QueueEngine(self.cfg, snapshot=self.store.load())
        if self._board_dirty or mono >= self._next_board:
            self.publish_board(publish, now, mono)
        if mono >= self._next_unconfirmed:
            self._next_unconfirmed = mono + UNCONFIRMED_EVERY
            self._report_unconfirmed(now)

    def _report_unconfirmed(self, now: float) -> None:
        """One log line per call some board never confirmed (a board that was down, a
        call that never reached a screen): staff and technicians should know."""
        for u in self.unconfirmed(now):
            if u.call.call_id in self._reported:
                continue
            self._reported.add(u.call.call_id)
            logger.warning(
                "call %s (%s to counter %s) not confirmed by %s",
                u.call.call_id,
                u.call.label,
                u.call.counter,
                ", ".join(sorted(u.missing)),
            )
        if len(self._reported) > 100_000:
            self._reported.clear()

    @property
    def displays(self) -> set[str]:
        return set(self._boards)

    def display_status(self, display: str, state: str, at: float) -> None:
        """A display board's status (``at``: the status's own time)."""
        since, gone = self._boards.get(display, (None, None))
        if state == "online" and (since is None or gone is not None):
            self._boards[display] = (at, None)
        elif state != "online" and since is not None and gone is None:
            self._boards[display] = (since, at)

    def _expected(self, display: str, at: float) -> bool:
        since, gone = self._boards[display]
        return since <= at and (gone is None or at < gone + RETIRE_AFTER)

    def unconfirmed(self, now: float) -> list[Any]:
        """Calls older than the grace that a display online when they were made has not
        confirmed (one that was down missed them: that is what this reports; one that
        joined later or was retired before is not asked)."""
        if not self._boards:
            return []
        found = []
        for u in self.engine.unconfirmed_calls(self.displays, now - self.cfg.confirm_grace):
            at = u.call.called_at
            missing = frozenset(d for d in u.missing if self._expected(d, at))
            if missing:
                found.append(replace(u, missing=missing))
        return found


def link_publisher(link: MqttLink) -> Publish:
    """``publish(topic, payload, qos=1, retain=False, correlation=None)`` on ``link``:
    the correlation data of an MQTT 5 request goes back with its answer."""

    def publish(
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        properties = None
        if correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        return link.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    return publish
