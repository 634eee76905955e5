"""What staff do at a counter: sign in and out, call, recall, serve, transfer, park,
mark a no-show, cancel; and the displays' confirmations of calls.

Rules that the codes spell out:

- a counter without staff is closed: it calls nothing (``counter_closed``);
- a counter holds at most one ticket (called or in service); calling again before that
  ticket is finished, a no-show, parked or transferred is refused (``counter_busy``),
  never finishes it behind the staff's back;
- start, finish, recall and no-show act on the counter's ticket; naming another ticket
  (or none being there) is ``not_called``; recall and no-show are refused once service
  has started (``in_service``); finishing a called ticket implies its start;
- each call and recall is a new :class:`~central.queue.model.Call` with id
  ``f"{ticket_id}#{n}"``; a recall past ``max_recalls`` marks the ticket a no-show;
- a transfer keeps ``queue_at``, so the customer is not sent to the back; it ends the
  visit and starts a new one (statistics count each service's part).
"""

from __future__ import annotations

from dataclasses import replace

from central.queue.codes import QueueCode
from central.queue.model import (
    AT_COUNTER,
    CLOSED_STATES,
    Call,
    Counter,
    Outcome,
    Ticket,
    TicketState,
)
from central.queue.ops import (
    CallNext,
    CallTicket,
    Cancel,
    ConfirmCall,
    FinishService,
    NoShow,
    Park,
    Recall,
    Resume,
    SignIn,
    SignOut,
    StartService,
    Transfer,
)
from central.queue.policies import Candidate, NextTicketPolicy, eligible
from central.queue.state import QueueError, QueueState, Reply, done, refuse


def candidate(t: Ticket, weight: float = 1.0) -> Candidate:
    return Candidate(t.id, t.service, t.kind, t.queue_at, t.number, weight)


def candidates(st: QueueState, counter_id: str) -> list[Candidate]:
    """The waiting tickets this counter may call: those of its services not kept for
    another counter, and those kept for it (of any service)."""
    cdef = st.counter_defs.get(counter_id)
    if cdef is None:
        return []
    found: dict[str, Candidate] = {}
    for service, weight in cdef.services.items():
        for tid in st.waiting.get(service, ()):
            t = st.tickets[tid]
            if t.for_counter is None or t.for_counter == counter_id:
                found[tid] = candidate(t, weight)
    for tid in st.reserved.get(counter_id, ()):
        if tid not in found:
            t = st.tickets[tid]
            found[tid] = candidate(t, cdef.services.get(t.service, 1.0))
    return sorted(found.values(), key=lambda c: c.order)


# -------------------------------------------------------------------------- guards


def _open_counter(st: QueueState, counter_id: str) -> Counter | Reply:
    c = st.counters.get(counter_id)
    if c is None:
        return refuse(QueueCode.UNKNOWN_COUNTER, f"no counter {counter_id!r}")
    if not c.open:
        return refuse(QueueCode.COUNTER_CLOSED, f"nobody is signed in at {counter_id}")
    return c


def _held(st: QueueState, counter_id: str, ticket_id: str | None) -> tuple[Counter, Ticket] | Reply:
    """The counter and the ticket it holds (which ``ticket_id``, if given, must be)."""
    c = _open_counter(st, counter_id)
    if isinstance(c, Reply):
        return c
    if ticket_id is not None and ticket_id not in st.tickets:
        return refuse(QueueCode.UNKNOWN_TICKET, ticket_id)
    if c.current is None or (ticket_id is not None and ticket_id != c.current):
        named = st.tickets.get(ticket_id) if ticket_id is not None else None
        return refuse(
            QueueCode.NOT_CALLED, f"{ticket_id or 'nothing'} is not called at {c.id}", ticket=named
        )
    t = st.tickets.get(c.current)
    if t is None or t.state not in AT_COUNTER:
        raise QueueError(f"counter {c.id} holds {c.current}, which is not at a counter")
    return c, t


def _ticket(st: QueueState, ticket_id: str) -> Ticket | Reply:
    """A ticket that is in the queue's life (printed, not closed)."""
    t = st.tickets.get(ticket_id)
    if t is None:
        return refuse(QueueCode.UNKNOWN_TICKET, ticket_id)
    if t.state in CLOSED_STATES:
        return refuse(QueueCode.TICKET_CLOSED, f"{t.id} is {t.state}", ticket=t)
    if t.state is TicketState.PRINTING:
        return refuse(QueueCode.NOT_PRINTED, f"{t.id} is still printing", ticket=t)
    return t


# ---------------------------------------------------------------------- sign in/out


def sign_in(st: QueueState, op: SignIn, now: float) -> Reply:
    c = st.counters.get(op.counter)
    if c is None:
        return refuse(QueueCode.UNKNOWN_COUNTER, f"no counter {op.counter!r}")
    if not op.staff:
        return refuse(QueueCode.BAD_REQUEST, "who signs in?")
    if c.staff == op.staff:
        return done(QueueCode.SIGNED_IN, "already signed in")
    if c.staff is not None:
        return refuse(QueueCode.COUNTER_TAKEN, f"{c.staff} is signed in at {c.id}")
    elsewhere = st.counter_of(op.staff)
    if elsewhere is not None:
        return refuse(QueueCode.STAFF_ELSEWHERE, f"{op.staff} is signed in at {elsewhere.id}")
    st.put(replace(c, staff=op.staff, signed_in_at=now))
    return done(QueueCode.SIGNED_IN)


def sign_out(st: QueueState, op: SignOut, now: float) -> Reply:
    c = _open_counter(st, op.counter)
    if isinstance(c, Reply):
        return c
    if c.current is not None:
        return refuse(QueueCode.COUNTER_BUSY, f"{c.current} is still at {c.id}")
    st.put(replace(c, staff=None, signed_in_at=None))
    return done(QueueCode.SIGNED_OUT)


# --------------------------------------------------------------------------- calling


def _new_call(t: Ticket, c: Counter, n: int, now: float, recall: int) -> Call:
    """The ``n``-th call of ``t`` (no staff id: calls go onto the public board)."""
    return Call(
        call_id=f"{t.id}#{n}",
        day=t.day,
        ticket_id=t.id,
        label=t.label,
        service=t.service,
        counter=c.id,
        called_at=now,
        recall=recall,
    )


def _call(
    st: QueueState,
    policy: NextTicketPolicy,
    c: Counter,
    t: Ticket,
    waiting: list[Candidate],
    now: float,
) -> Reply:
    n = t.calls + 1
    call = _new_call(t, c, n, now, recall=0)
    weight = st.counter_defs[c.id].services.get(t.service, 1.0)
    state = policy.record(c.policy_state, candidate(t, weight), waiting)
    t = replace(
        t,
        state=TicketState.CALLED,
        counter=c.id,
        staff=c.staff,
        for_counter=None,
        calls=n,
        recalls=0,
        called_at=now,
        started_at=None,
    )
    st.put(t)
    st.put(call)
    st.put(replace(c, current=t.id, current_call=call.call_id, policy_state=state))
    v = st.visit(t)
    if v is not None:
        st.put(
            replace(
                v,
                called_at=v.called_at if v.called_at is not None else now,
                counter=c.id,
                staff=c.staff,
            )
        )
    return done(QueueCode.CALLED, ticket=t, call=call)


def call_next(st: QueueState, policy: NextTicketPolicy, op: CallNext, now: float) -> Reply:
    c = _open_counter(st, op.counter)
    if isinstance(c, Reply):
        return c
    if c.current is not None:
        return refuse(QueueCode.COUNTER_BUSY, f"{c.current} is still at {c.id}")
    waiting = candidates(st, c.id)
    offered = eligible(waiting)
    if not offered:
        return refuse(QueueCode.NOTHING_WAITING, f"nothing waits for {c.id}")
    chosen = policy.pick(offered, c.id, c.policy_state, now)
    if chosen is None or chosen not in offered:
        raise QueueError(f"policy {policy.name} picked {chosen!r}, not one of the candidates")
    return _call(st, policy, c, st.tickets[chosen.ticket_id], waiting, now)


def call_ticket(st: QueueState, policy: NextTicketPolicy, op: CallTicket, now: float) -> Reply:
    c = _open_counter(st, op.counter)
    if isinstance(c, Reply):
        return c
    t = _ticket(st, op.ticket_id)
    if isinstance(t, Reply):
        return t
    if c.current is not None:
        return refuse(QueueCode.COUNTER_BUSY, f"{c.current} is still at {c.id}")
    if t.state not in (TicketState.WAITING, TicketState.PARKED):
        return refuse(QueueCode.NOT_WAITING, f"{t.id} is {t.state}", ticket=t)
    if t.for_counter is not None and t.for_counter != c.id:
        return refuse(QueueCode.OTHER_COUNTER, f"{t.id} is kept for {t.for_counter}", ticket=t)
    return _call(st, policy, c, t, candidates(st, c.id), now)


def recall(st: QueueState, op: Recall, now: float) -> Reply:
    held = _held(st, op.counter, None)
    if isinstance(held, Reply):
        return held
    c, t = held
    if t.state is TicketState.SERVING:
        return refuse(QueueCode.IN_SERVICE, f"{t.id} is being served", ticket=t)
    if t.recalls >= st.settings.max_recalls:
        t = _end(st, t, TicketState.NO_SHOW, Outcome.NO_SHOW, now)
        return done(QueueCode.NO_SHOW_RECALLS, f"{t.recalls} recalls", ticket=t)
    n = t.calls + 1
    call = _new_call(t, c, n, now, recall=t.recalls + 1)
    t = replace(t, calls=n, recalls=t.recalls + 1, called_at=now)
    st.put(t)
    st.put(call)
    st.put(replace(c, current_call=call.call_id))
    v = st.visit(t)
    if v is not None:
        st.put(replace(v, recalls=v.recalls + 1))
    return done(QueueCode.RECALLED, ticket=t, call=call)


# ------------------------------------------------------------------------ serving


def _end(
    st: QueueState, t: Ticket, state: TicketState, outcome: Outcome, now: float, note: str = ""
) -> Ticket:
    """Close ``t`` (and its visit), freeing its counter."""
    st.free_counter(t)
    started = t.started_at
    if state is TicketState.DONE and started is None:
        started = t.called_at
    t = replace(t, state=state, ended_at=now, started_at=started, note=note or t.note)
    st.put(t)
    v = st.visit(t)
    if v is not None:
        st.put(
            replace(
                v,
                outcome=outcome,
                ended_at=now,
                started_at=v.started_at if v.started_at is not None else started,
            )
        )
    return t


def start(st: QueueState, op: StartService, now: float) -> Reply:
    held = _held(st, op.counter, op.ticket_id)
    if isinstance(held, Reply):
        return held
    _c, t = held
    if t.state is TicketState.SERVING:
        return refuse(QueueCode.IN_SERVICE, f"{t.id} is already being served", ticket=t)
    t = replace(t, state=TicketState.SERVING, started_at=now)
    st.put(t)
    v = st.visit(t)
    if v is not None and v.started_at is None:
        st.put(replace(v, started_at=now))
    return done(QueueCode.STARTED, ticket=t)


def finish(st: QueueState, op: FinishService, now: float) -> Reply:
    held = _held(st, op.counter, op.ticket_id)
    if isinstance(held, Reply):
        return held
    t = _end(st, held[1], TicketState.DONE, Outcome.FINISHED, now)
    return done(QueueCode.FINISHED, ticket=t)


def no_show(st: QueueState, op: NoShow, now: float) -> Reply:
    held = _held(st, op.counter, op.ticket_id)
    if isinstance(held, Reply):
        return held
    t = held[1]
    if t.state is TicketState.SERVING:
        return refuse(QueueCode.IN_SERVICE, f"{t.id} is being served", ticket=t)
    t = _end(st, t, TicketState.NO_SHOW, Outcome.NO_SHOW, now)
    return done(QueueCode.NO_SHOW, ticket=t)


def cancel(st: QueueState, op: Cancel, now: float) -> Reply:
    t = _ticket(st, op.ticket_id)
    if isinstance(t, Reply):
        return t
    t = _end(st, t, TicketState.CANCELLED, Outcome.CANCELLED, now, op.reason)
    return done(QueueCode.CANCELLED, ticket=t)


# ------------------------------------------------------------------ moving tickets


def transfer(st: QueueState, op: Transfer, now: float) -> Reply:
    t = _ticket(st, op.ticket_id)
    if isinstance(t, Reply):
        return t
    if op.to_service is None and op.to_counter is None:
        return refuse(QueueCode.BAD_REQUEST, "a transfer needs a service or a counter", ticket=t)
    if op.to_service is not None and op.to_service not in st.services:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {op.to_service!r}", ticket=t)
    if op.to_counter is not None and op.to_counter not in st.counters:
        return refuse(QueueCode.UNKNOWN_COUNTER, f"no counter {op.to_counter!r}", ticket=t)
    st.free_counter(t)
    st.update_visit(t, outcome=Outcome.TRANSFERRED, ended_at=now)
    t = replace(
        t,
        state=TicketState.WAITING,
        service=op.to_service or t.service,
        for_counter=op.to_counter,
        counter=None,
        staff=None,
        recalls=0,
        called_at=None,
        started_at=None,
        segment=t.segment + 1,
    )
    st.put(t)
    st.open_visit(t, now)
    return done(QueueCode.TRANSFERRED, ticket=t)


def park(st: QueueState, op: Park, now: float) -> Reply:
    t = _ticket(st, op.ticket_id)
    if isinstance(t, Reply):
        return t
    if t.state is TicketState.PARKED:
        return refuse(QueueCode.ALREADY_PARKED, t.id, ticket=t)
    by = t.counter if t.state in AT_COUNTER else None
    st.free_counter(t)
    t = replace(t, state=TicketState.PARKED, counter=by)
    st.put(t)
    return done(QueueCode.PARKED, ticket=t)


def resume(st: QueueState, op: Resume, now: float) -> Reply:
    t = _ticket(st, op.ticket_id)
    if isinstance(t, Reply):
        return t
    if t.state is not TicketState.PARKED:
        return refuse(QueueCode.NOT_PARKED, f"{t.id} is {t.state}", ticket=t)
    back_to = t.counter if t.counter in st.counters else t.for_counter
    t = replace(t, state=TicketState.WAITING, for_counter=back_to, counter=None)
    st.put(t)
    return done(QueueCode.RESUMED, ticket=t)


# --------------------------------------------------------------------- displays


def confirm(st: QueueState, op: ConfirmCall, now: float) -> Reply:
    call = st.calls.get(op.call_id)
    if call is None:
        return refuse(QueueCode.UNKNOWN_CALL, op.call_id)
    if not op.display:
        return refuse(QueueCode.BAD_REQUEST, "which display?", call=call)
    if op.display not in call.shown:
        call = replace(call, shown={**call.shown, op.display: op.shown_at})
        st.put(call)
    return done(QueueCode.CONFIRMED, call=call)
