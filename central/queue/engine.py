"""The queue engine: central's queue state and the operations that change it.

Pure: :meth:`QueueEngine.apply` takes an operation and ``now`` (Unix time) and returns an
:class:`~central.queue.ops.OpResult`; it reads no clock, does no IO, draws no random
number and never sleeps, so the same operations at the same times always give the same
state. The service around it (MQTT, the CLI) persists each result's ``changes`` with
:class:`~central.queue.store.QueueStore` before answering, and publishes the board.

Idempotency: the result of every op id is remembered (with the business day it was
applied on) for today and yesterday, and at most :data:`MAX_REMEMBERED_OPS` of them;
applying a remembered op id returns its first result with ``duplicate=True`` and does
nothing else. Refusals are remembered too.

Time-driven work happens in :meth:`QueueEngine.tick` (call it every few seconds):
appointments whose check-in window closed are cancelled as no-shows. Entering a new
business day (on the first op or tick that sees it) expires the earlier days' tickets
still waiting, parked or printing, and forgets what is older than yesterday.

Operations are applied by one thread; queries read the same state from that thread.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

from central.queue import appointments, calls, numbering
from central.queue.codes import QueueCode
from central.queue.model import (
    Appointment,
    Call,
    Counter,
    DuplicateNumber,
    Entity,
    Ticket,
    TicketKind,
    TicketState,
    Visit,
)
from central.queue.ops import (
    Board,
    BookAppointment,
    CallNext,
    CallTicket,
    Cancel,
    CancelAppointment,
    CheckIn,
    ConfirmCall,
    CurrentCall,
    FinishService,
    IssueTicket,
    LeaseBlock,
    NoShow,
    Op,
    OpResult,
    Park,
    Recall,
    RegisterTicket,
    Resume,
    ServiceLoad,
    SignIn,
    SignOut,
    StartService,
    TicketPrinted,
    TicketStatus,
    TicketVoided,
    Transfer,
    Unconfirmed,
)
from central.queue.policies import Candidate, NextTicketPolicy, make_policy
from central.queue.settings import QueueSection
from central.queue.state import QueueError, QueueSnapshot, QueueState, Reply, refuse
from central.queue.stats import Figures, Grouping, WaitEstimator, summarise, targets_of

logger = logging.getLogger(__name__)

#: Most op results remembered for duplicates (on top of the today-and-yesterday rule).
MAX_REMEMBERED_OPS = 100_000
TICK = "tick"

Handler = Callable[[QueueState, Any, float], Reply]


class QueueEngine:
    def __init__(
        self,
        settings: QueueSection,
        *,
        policy: NextTicketPolicy | None = None,
        snapshot: QueueSnapshot | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy or make_policy(settings.policy.name, settings.policy.params())
        self._st = QueueState(settings)
        self._results: OrderedDict[str, tuple[date, OpResult]] = OrderedDict()
        st = self._st
        self._handlers: dict[type[Op], Handler] = {
            IssueTicket: numbering.issue,
            TicketPrinted: numbering.printed,
            TicketVoided: numbering.voided,
            LeaseBlock: numbering.lease,
            RegisterTicket: numbering.register,
            BookAppointment: appointments.book,
            CancelAppointment: appointments.cancel,
            CheckIn: appointments.check_in,
            SignIn: calls.sign_in,
            SignOut: calls.sign_out,
            CallNext: lambda s, op, now: calls.call_next(s, self.policy, op, now),
            CallTicket: lambda s, op, now: calls.call_ticket(s, self.policy, op, now),
            Recall: calls.recall,
            StartService: calls.start,
            FinishService: calls.finish,
            NoShow: calls.no_show,
            Transfer: calls.transfer,
            Park: calls.park,
            Resume: calls.resume,
            Cancel: calls.cancel,
            ConfirmCall: calls.confirm,
        }
        if snapshot is not None:
            for entity in snapshot.entities:
                st.put(entity, record=False)
            for day, result in snapshot.results:
                self._remember(day, result)

    # ------------------------------------------------------------------ operations

    def apply(self, op: Op, now: float) -> OpResult:
        """Apply ``op`` at Unix time ``now`` (or return the result its op id already had)."""
        seen = self._results.get(op.op_id)
        if seen is not None:
            first = seen[1]
            if first.kind != op.KIND:
                logger.warning(
                    "queue: op id %s reused by a %s (first a %s)", op.op_id, op.KIND, first.kind
                )
            return replace(first, duplicate=True, changes=())
        handler = self._handlers.get(type(op))
        if handler is None:
            raise QueueError(f"not a queue operation: {type(op).__name__}")
        if not op.op_id:
            reply = refuse(QueueCode.BAD_REQUEST, "an operation needs an op id")
            return self._result(op.op_id, op.KIND, reply, now, ())
        try:
            self._st.roll_day(now)
            reply = handler(self._st, op, now)
        except Exception:
            self._st.take_changes()  # a bug: the state is suspect, reload it from the store
            logger.exception("queue: %s %s failed", op.KIND, op.op_id)
            raise
        result = self._result(op.op_id, op.KIND, reply, now, self._st.take_changes())
        assert self._st.mark is not None  # roll_day set it
        self._remember(self._st.mark.current, replace(result, changes=()))
        if not result.ok:
            logger.debug(
                "queue: %s %s refused: %s %s", op.KIND, op.op_id, result.code, result.detail
            )
        return result

    def tick(self, now: float) -> OpResult:
        """Do what time alone decides: enter a new business day, cancel appointments
        whose check-in window closed. Its result has op id "" (nothing to remember) and
        its ``changes`` must be saved like any other."""
        self._st.roll_day(now)
        self._forget_old_results()
        expired = appointments.expire(self._st, now)
        reply = Reply(True, QueueCode.TICKED, detail=f"{expired} appointment(s) expired")
        return self._result("", TICK, reply, now, self._st.take_changes())

    @staticmethod
    def _result(
        op_id: str, kind: str, reply: Reply, now: float, changes: tuple[Entity, ...]
    ) -> OpResult:
        return OpResult(
            op_id=op_id,
            kind=kind,
            ok=reply.ok,
            code=reply.code,
            at=now,
            ticket=reply.ticket,
            call=reply.call,
            appointment=reply.appointment,
            lease=reply.lease,
            detail=reply.detail,
            changes=changes,
        )

    def _remember(self, day: date, result: OpResult) -> None:
        if not result.op_id:
            return
        self._results[result.op_id] = (day, result)
        while len(self._results) > MAX_REMEMBERED_OPS:
            self._results.popitem(last=False)
        self._forget_old_results()

    def _forget_old_results(self) -> None:
        kept_from = self._st.kept_from
        if kept_from is not None:
            while self._results:
                oldest_day, _ = next(iter(self._results.values()))
                if oldest_day >= kept_from:
                    break
                self._results.popitem(last=False)

    def remembered(self, op_id: str) -> OpResult | None:
        """The first result of ``op_id``, if still remembered."""
        seen = self._results.get(op_id)
        return seen[1] if seen is not None else None

    # ------------------------------------------------------------------ state

    @property
    def day(self) -> date | None:
        """The business day the engine is in (None before its first operation)."""
        return self._st.mark.current if self._st.mark is not None else None

    def ticket(self, ticket_id: str) -> Ticket | None:
        return self._st.tickets.get(ticket_id)

    def counter(self, counter_id: str) -> Counter | None:
        return self._st.counters.get(counter_id)

    def call(self, call_id: str) -> Call | None:
        return self._st.calls.get(call_id)

    def appointment(self, appointment_id: str) -> Appointment | None:
        return self._st.appointments.get(appointment_id)

    def tickets(self) -> list[Ticket]:
        return list(self._st.tickets.values())

    def visits(self) -> list[Visit]:
        return list(self._st.visits.values())

    def duplicate_numbers(self, day: date | None = None) -> list[DuplicateNumber]:
        """Offline registrations refused because the number was already held."""
        return [d for d in self._st.duplicates.values() if day is None or d.day == day]

    def entities(self) -> Iterator[Entity]:
        """Every entity the engine holds (what the store would load back)."""
        return self._st.entities()

    def snapshot(self) -> QueueSnapshot:
        return QueueSnapshot(list(self._st.entities()), list(self._results.values()))

    # ------------------------------------------------------------------ queries

    def candidates(self, counter_id: str) -> list[Candidate]:
        """The tickets ``counter_id`` may call now, in queue order."""
        return calls.candidates(self._st, counter_id)

    def _estimator(self, now: float) -> WaitEstimator:
        st = self._st
        recent: list[Visit] = []
        since = now - self.settings.estimate_window
        for key in reversed(st.ended):
            v = st.visits[key]
            if v.ended_at is not None and v.ended_at < since:
                break
            recent.append(v)
        waiting = {s: len(ids) for s, ids in st.waiting.items()}
        opened = [c.id for c in st.counters.values() if c.open]
        return WaitEstimator(self.settings, opened, recent, waiting)

    def _ahead(self, t: Ticket) -> int:
        """Tickets of the same service before ``t`` (appointments first, then by time)."""
        key = (t.kind is not TicketKind.APPOINTMENT, t.order)
        return sum(
            1
            for tid in self._st.waiting.get(t.service, ())
            if tid != t.id
            and (
                (o := self._st.tickets[tid]).kind is not TicketKind.APPOINTMENT,
                o.order,
            )
            < key
        )

    def service_load(self, service: str, now: float) -> ServiceLoad | None:
        """Waiting count and the estimated wait (s) for a ticket taken now."""
        return self._load(service, self._estimator(now))

    def _load(self, service: str, est: WaitEstimator) -> ServiceLoad | None:
        sdef = self.settings.service(service)
        if sdef is None:
            return None
        waiting = len(self._st.waiting.get(service, ()))
        return ServiceLoad(sdef.id, sdef.title, sdef.prefix, waiting, est.wait(service, waiting))

    def ticket_status(self, ticket_id: str, now: float) -> TicketStatus | None:
        """Where a ticket stands: people ahead and estimated wait while it waits."""
        t = self._st.tickets.get(ticket_id)
        if t is None:
            return None
        ahead: int | None = None
        wait: int | None = None
        if t.state is TicketState.WAITING:
            ahead = self._ahead(t)
            wait = self._estimator(now).wait(t.service, ahead)
        c = self._st.counters.get(t.counter) if t.counter is not None else None
        held = c is not None and c.current == t.id
        return TicketStatus(
            ticket_id=t.id,
            label=t.label,
            service=t.service,
            state=t.state,
            ahead=ahead,
            estimated_wait=wait,
            counter=t.counter if held else None,
            call_id=c.current_call if c is not None and held else None,
        )

    def board(self, now: float, recent: int | None = None) -> Board:
        """What the displays show: the call at each counter, the day's last calls, and
        each service's waiting count and estimated wait."""
        st = self._st
        today = st.day_of(now)
        current: list[CurrentCall] = []
        for cdef in self.settings.counters:
            c = st.counters[cdef.id]
            t = st.tickets.get(c.current) if c.current is not None else None
            call = st.calls.get(c.current_call) if c.current_call is not None else None
            if t is None or call is None:
                continue
            current.append(
                CurrentCall(
                    counter=c.id,
                    counter_name=cdef.title,
                    ticket_id=t.id,
                    label=t.label,
                    service=t.service,
                    state=t.state,
                    call_id=call.call_id,
                    called_at=call.called_at,
                    recalls=t.recalls,
                )
            )
        n = self.settings.recent_calls if recent is None else recent
        last: list[Call] = []
        for call_id in reversed(st.call_order):
            if len(last) >= n:
                break
            call = st.calls[call_id]
            if call.day != today:
                break
            last.append(call)
        est = self._estimator(now)
        loads = [self._load(s.id, est) for s in self.settings.services]
        return Board(
            day=today,
            at=now,
            current=tuple(current),
            recent=tuple(last),
            services=tuple(x for x in loads if x is not None),
            open_counters=tuple(c.id for c in self.settings.counters if st.counters[c.id].open),
        )

    def unconfirmed_calls(
        self, displays: Iterable[str], older_than: float, since: float | None = None
    ) -> list[Unconfirmed]:
        """Calls made at or before ``older_than`` (and at or after ``since``) that some of
        ``displays`` have not confirmed, oldest first."""
        wanted = frozenset(displays)
        found: list[Unconfirmed] = []
        for call_id in reversed(self._st.call_order):
            call = self._st.calls[call_id]
            if since is not None and call.called_at < since:
                break
            if call.called_at > older_than:
                continue
            missing = wanted - call.shown.keys()
            if missing:
                found.append(Unconfirmed(call, frozenset(missing)))
        found.reverse()
        return found

    def stats(self, by: Grouping, day: date | None = None) -> dict[str, Figures]:
        """Figures per service, counter or staff for ``day`` (None: every day held)."""
        visits: Iterable[Visit] = self._st.visits.values()
        if day is not None:
            visits = [v for v in visits if v.day == day]
        return summarise(visits, by, self.settings.timezone, targets_of(self.settings))
