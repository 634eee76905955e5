"""Stable outcome codes.

Events, logs, screens and tests key on these values; only a screen turns a code into
words (so it can be translated). Never rename or reuse a value: add a new one.
"""

from enum import StrEnum


class Outcome(StrEnum):
    """What a gate decided about a credential."""

    GRANTED = "granted"
    DENIED_UNKNOWN = "denied.unknown"
    DENIED_BLOCKED = "denied.blocked"
    DENIED_LOST = "denied.lost"
    DENIED_EXPIRED = "denied.expired"
    IGNORED_DEBOUNCE = "ignored.debounce"
    MANUAL_OPEN = "manual.open"
    IGNORED_BUTTON = "ignored.button"


class Fault(StrEnum):
    """A device fault reported upstream and shown on screen."""

    READER_DOWN = "fault.reader_down"
    RELAY_FAILED = "fault.relay_failed"
    PRINTER_MISSING = "fault.printer_missing"
    STORE_REBUILT = "fault.store_rebuilt"
    CATALOG_EMPTY = "fault.catalog_empty"


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
