"""Appointments: booked for a service and a slot, checked in at a dispenser with a code.

The check-in code is made by the caller (:func:`new_checkin_code`, with :mod:`secrets`)
and passed in :class:`~central.queue.ops.BookAppointment`, so the engine stays
deterministic. Check-in is open from ``appointment_early`` minutes before the slot to
``appointment_late`` minutes after it, judged on the dispenser's ``issued_at``. The ticket
it gives queues by the *slot* (an appointment at 10:00 checked in at 09:05 is still
behind one at 09:30) and, being an appointment, ahead of every walk-in whatever the
policy. :func:`expire` (run by the engine's ``tick``) cancels as no-shows the booked
appointments whose window has closed.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import replace

from central.queue.codes import QueueCode
from central.queue.model import Appointment, AppointmentState, Source
from central.queue.numbering import store_number, take_number
from central.queue.ops import BookAppointment, CancelAppointment, CheckIn
from central.queue.state import QueueState, Reply, done, refuse

CODE_ALPHABET = string.digits


def new_checkin_code(length: int = 6) -> str:
    """A random check-in code to pass in :class:`BookAppointment` (never made inside the
    engine). On ``duplicate_code``, book again with a new one."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _window(st: QueueState, a: Appointment) -> tuple[float, float]:
    s = st.settings
    return a.slot - s.appointment_early * 60.0, a.slot + s.appointment_late * 60.0


def book(st: QueueState, op: BookAppointment, now: float) -> Reply:
    service = st.services.get(op.service)
    if service is None:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {op.service!r}")
    if not op.code:
        return refuse(QueueCode.BAD_REQUEST, "an appointment needs a check-in code")
    aid = op.appointment_id or op.op_id
    if aid in st.appointments:
        return refuse(QueueCode.DUPLICATE_APPOINTMENT, aid, appointment=st.appointments[aid])
    if op.code in st.codes:
        return refuse(QueueCode.DUPLICATE_CODE, "the check-in code is in use; make another")
    a = Appointment(
        id=aid,
        day=st.day_of(op.slot),
        service=service.id,
        slot=op.slot,
        code=op.code,
        state=AppointmentState.BOOKED,
        booked_at=now,
        note=op.note,
    )
    if _window(st, a)[1] < now:
        return refuse(QueueCode.TOO_LATE, "the slot's check-in window is already over")
    st.put(a)
    return done(QueueCode.BOOKED, appointment=a)


def _closed(a: Appointment) -> Reply | None:
    if a.state is AppointmentState.CHECKED_IN:
        return refuse(QueueCode.ALREADY_CHECKED_IN, a.ticket_id or "", appointment=a)
    if a.state is not AppointmentState.BOOKED:
        return refuse(QueueCode.APPOINTMENT_CLOSED, str(a.state), appointment=a)
    return None


def cancel(st: QueueState, op: CancelAppointment, now: float) -> Reply:
    a = st.appointments.get(op.appointment_id)
    if a is None:
        return refuse(QueueCode.UNKNOWN_APPOINTMENT, op.appointment_id)
    refused = _closed(a)
    if refused is not None:
        return refused
    a = replace(a, state=AppointmentState.CANCELLED, closed_at=now)
    st.put(a)
    return done(QueueCode.APPOINTMENT_CANCELLED, appointment=a)


def check_in(st: QueueState, op: CheckIn, now: float) -> Reply:
    aid = st.codes.get(op.code)
    a = st.appointments.get(aid) if aid is not None else None
    if a is None:
        return refuse(QueueCode.UNKNOWN_CODE, "no appointment has this code")
    refused = _closed(a)
    if refused is not None:
        return refused
    opens, closes = _window(st, a)
    if op.issued_at < opens:
        return refuse(QueueCode.TOO_EARLY, f"check-in opens at {opens:.0f}", appointment=a)
    if op.issued_at > closes:
        return refuse(QueueCode.TOO_LATE, f"check-in closed at {closes:.0f}", appointment=a)
    service = st.services.get(a.service)
    if service is None:
        return refuse(QueueCode.UNKNOWN_SERVICE, f"no service {a.service!r}", appointment=a)
    t = take_number(st, now, service)
    if t is None:
        return refuse(QueueCode.RANGE_EXHAUSTED, f"{service.id}: every number is taken today")
    t = replace(
        t,
        source=Source.APPOINTMENT,
        issued_at=op.issued_at,
        queue_at=a.slot,
        dispenser=op.dispenser,
        appointment=a.id,
    )
    store_number(st, t, service)
    a = replace(a, state=AppointmentState.CHECKED_IN, ticket_id=t.id, checked_in_at=op.issued_at)
    st.put(a)
    return done(QueueCode.CHECKED_IN, ticket=t, appointment=a)


def expire(st: QueueState, now: float) -> int:
    """Cancel (as no-shows) the booked appointments whose check-in window has closed."""
    late = [
        a
        for a in st.appointments.values()
        if a.state is AppointmentState.BOOKED and _window(st, a)[1] < now
    ]
    for a in late:
        st.put(replace(a, state=AppointmentState.NO_SHOW, closed_at=now))
    return len(late)
