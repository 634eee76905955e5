"""Stable outcome codes of the queue engine.

Every :class:`~central.queue.ops.OpResult` carries one. The MQTT replies, the logs, the
counter and dispenser screens and the tests key on these values; only a screen turns a
code into words, so it can be translated. Never rename or reuse a value: add a new one.

``queue.<done>`` means the operation took effect; ``queue.refused.<why>`` means it changed
nothing (and is remembered under its op id like any other result).
"""

from enum import StrEnum


class QueueCode(StrEnum):
    # ------------------------------------------------------------------ it happened
    ISSUED = "queue.issued"  # a number taken online; the ticket is printing
    PRINTED = "queue.printed"  # the dispenser printed it: it is in the queue
    VOIDED = "queue.voided"  # the print failed: the number goes back to the pool
    LEASED = "queue.leased"  # a block of numbers reserved for a dispenser
    REGISTERED = "queue.registered"  # a ticket issued offline from a leased block
    BOOKED = "queue.booked"
    APPOINTMENT_CANCELLED = "queue.appointment_cancelled"
    CHECKED_IN = "queue.checked_in"  # an appointment's ticket; it is printing
    SIGNED_IN = "queue.signed_in"
    SIGNED_OUT = "queue.signed_out"
    CALLED = "queue.called"
    RECALLED = "queue.recalled"
    STARTED = "queue.started"
    FINISHED = "queue.finished"
    NO_SHOW = "queue.no_show"
    #: A recall past ``max_recalls``: the ticket was marked a no-show instead.
    NO_SHOW_RECALLS = "queue.no_show.recalls"
    TRANSFERRED = "queue.transferred"
    PARKED = "queue.parked"
    RESUMED = "queue.resumed"
    CANCELLED = "queue.cancelled"
    CONFIRMED = "queue.confirmed"  # a display showed (and announced) a call
    TICKED = "queue.ticked"  # time-driven work done (maybe nothing)

    # -------------------------------------------------------- refused: the request
    BAD_REQUEST = "queue.refused.bad_request"  # a field makes no sense (size 0, no target)
    UNKNOWN_SERVICE = "queue.refused.unknown_service"
    UNKNOWN_COUNTER = "queue.refused.unknown_counter"
    UNKNOWN_TICKET = "queue.refused.unknown_ticket"
    UNKNOWN_CALL = "queue.refused.unknown_call"
    #: The business day is over and forgotten (older than yesterday), or already past.
    DAY_CLOSED = "queue.refused.day_closed"

    # ------------------------------------------------------ refused: numbering
    RANGE_EXHAUSTED = "queue.refused.range_exhausted"
    DUPLICATE_NUMBER = "queue.refused.duplicate_number"
    NOT_LEASED = "queue.refused.not_leased"  # not in a block leased to that dispenser

    # ------------------------------------------------- refused: the ticket's state
    NOT_PRINTING = "queue.refused.not_printing"  # printed/voided twice
    NOT_PRINTED = "queue.refused.not_printed"  # still printing: not in the queue yet
    NOT_WAITING = "queue.refused.not_waiting"  # called, in service, or gone
    NOT_CALLED = "queue.refused.not_called"  # not the ticket called at this counter
    IN_SERVICE = "queue.refused.in_service"  # being served: no recall, no no-show
    NOT_PARKED = "queue.refused.not_parked"
    ALREADY_PARKED = "queue.refused.already_parked"
    TICKET_CLOSED = "queue.refused.ticket_closed"  # finished, no-show, cancelled, expired
    OTHER_COUNTER = "queue.refused.other_counter"  # transferred to another counter

    # ------------------------------------------------ refused: the counter's state
    COUNTER_CLOSED = "queue.refused.counter_closed"  # nobody signed in
    COUNTER_BUSY = "queue.refused.counter_busy"  # a ticket is still called or in service
    COUNTER_TAKEN = "queue.refused.counter_taken"  # someone else is signed in there
    STAFF_ELSEWHERE = "queue.refused.staff_elsewhere"  # signed in at another counter
    NOTHING_WAITING = "queue.refused.nothing_waiting"

    # --------------------------------------------------- refused: appointments
    UNKNOWN_CODE = "queue.refused.unknown_code"
    UNKNOWN_APPOINTMENT = "queue.refused.unknown_appointment"
    DUPLICATE_CODE = "queue.refused.duplicate_code"
    DUPLICATE_APPOINTMENT = "queue.refused.duplicate_appointment"
    TOO_EARLY = "queue.refused.too_early"
    TOO_LATE = "queue.refused.too_late"
    ALREADY_CHECKED_IN = "queue.refused.already_checked_in"
    APPOINTMENT_CLOSED = "queue.refused.appointment_closed"  # cancelled or a no-show
