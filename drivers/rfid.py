"""What an RFID/credential reader can do.

A reader runs its own thread (SPI polling, a serial port) and hands each UID it reads to
the callback given to :meth:`RfidReader.start`. The callback only enqueues; debouncing a
card held in the field is the application's job, per UID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: Called from the reader's own thread with the UID as upper-case hex (no separators).
UidCallback = Callable[[str], None]
#: Called from the reader's thread when the reader goes away (``False``) or comes back.
HealthCallback = Callable[[bool, str], None]


@runtime_checkable
class RfidReader(Protocol):
    name: str

    def start(self, on_uid: UidCallback, on_health: HealthCallback) -> None:
        """Begin reading; returns at once. Raises DriverError if the device is absent."""

    def stop(self) -> None:
        """Stop reading and release the device; safe to call twice."""
