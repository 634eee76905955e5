"""Stable outcome codes.

Events, logs, screens and tests key on these values; only a screen turns a code into
words (so it can be translated). Never rename or reuse a value: add a new one.
"""

from enum import StrEnum


class Outcome(StrEnum):
    """What a gate decided about a credential, and (with a rotation sensor) what became of
    the passage it opened."""

    GRANTED = "granted"
    DENIED_UNKNOWN = "denied.unknown"
    DENIED_BLOCKED = "denied.blocked"
    DENIED_LOST = "denied.lost"
    DENIED_EXPIRED = "denied.expired"
    IGNORED_DEBOUNCE = "ignored.debounce"
    MANUAL_OPEN = "manual.open"
    IGNORED_BUTTON = "ignored.button"
    PASSAGE_COMMITTED = "passage.committed"
    PASSAGE_ANNULLED = "passage.annulled"
    ROTATION_UNEXPECTED = "rotation.unexpected"
    #: Tariff admission and no rules published yet (or unreadable): nobody is let in.
    DENIED_NO_RULES = "denied.no_rules"
    #: The gate's zones (config) are not a zone and one of its ancestors in the rules.
    DENIED_GATE_MISCONFIGURED = "denied.gate_misconfigured"


class AnnulReason(StrEnum):
    """Why an opened passage was annulled (the ``reason`` of a ``gate.annulled`` event)."""

    TIMEOUT = "timeout"  # the turnstile did not turn within gate.rotation_timeout
    OVERFLOW = "overflow"  # too many passages were waiting; the oldest gave way
    SHUTDOWN = "shutdown"  # the daemon stopped cleanly (after a crash nothing is emitted)


class Fault(StrEnum):
    """A device fault reported upstream and shown on screen."""

    READER_DOWN = "fault.reader_down"
    RELAY_FAILED = "fault.relay_failed"
    PRINTER_MISSING = "fault.printer_missing"
    #: The printer answers but cannot print a ticket now.
    PRINTER_PAPER_OUT = "fault.printer_paper_out"
    PRINTER_COVER_OPEN = "fault.printer_cover_open"
    PRINTER_OFFLINE = "fault.printer_offline"
    #: Paper near its end: tickets still print; someone should bring a roll.
    PRINTER_PAPER_LOW = "fault.printer_paper_low"
    #: A print started and failed: the ticket's number was given back.
    PRINTER_FAILED = "fault.printer_failed"
    #: The display board cannot play its chime or announcements.
    SOUND_DOWN = "fault.sound_down"
    STORE_REBUILT = "fault.store_rebuilt"
    CATALOG_EMPTY = "fault.catalog_empty"
    #: Tariff admission without usable rules, or the gate's zones not in them.
    RULES_UNUSABLE = "fault.rules_unusable"


class Rejection(StrEnum):
    """Why an incoming message was refused (logged, quarantined, or answered)."""

    NOT_JSON = "reject.not_json"
    NOT_UTF8 = "reject.not_utf8"
    TOO_LARGE = "reject.too_large"
    BAD_SCHEMA_VERSION = "reject.schema_version"
    BAD_SHAPE = "reject.shape"
    WRONG_DEVICE = "reject.wrong_device"
    EXPIRED = "reject.expired"
    UNKNOWN_COMMAND = "reject.unknown_command"


class TicketOutcome(StrEnum):
    """What became of a press on a dispenser's service button (shown on its screen)."""

    ISSUED = "ticket.issued"
    #: Issued from a leased block: central was unreachable.
    ISSUED_OFFLINE = "ticket.issued_offline"
    #: The printer cannot print now: no number was taken.
    PRINTER_NOT_READY = "ticket.refused.printer"
    #: The print failed: the number was given back.
    PRINT_FAILED = "ticket.refused.print_failed"
    #: Central unreachable and no leased numbers left for the service.
    NO_NUMBERS = "ticket.refused.no_numbers"
    #: Central refused (e.g. the service's range is used up today); its code is the detail.
    REFUSED = "ticket.refused.central"
    #: Another ticket is being issued: presses are taken one at a time.
    BUSY = "ticket.refused.busy"
    # An appointment's check-in code scanned (its ticket is ``ISSUED`` like any other):
    #: before the appointment's check-in window opens;
    CHECKIN_TOO_EARLY = "ticket.refused.checkin_too_early"
    #: after it closed;
    CHECKIN_TOO_LATE = "ticket.refused.checkin_too_late"
    #: no appointment has this code (or what was scanned is no check-in code);
    CHECKIN_UNKNOWN = "ticket.refused.checkin_unknown"
    #: the appointment already has its ticket;
    CHECKIN_USED = "ticket.refused.checkin_used"
    #: the appointment was cancelled, or is past as a no-show;
    CHECKIN_CLOSED = "ticket.refused.checkin_closed"
    #: central unreachable: a code cannot be checked, and no leased number is used for it.
    CHECKIN_OFFLINE = "ticket.refused.checkin_offline"
