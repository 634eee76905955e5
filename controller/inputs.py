"""What other threads put on the owner thread's inbox (besides the MQTT link's events)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tap:
    """A credential read; ``at`` is the monotonic time of the read."""

    uid: str
    at: float


@dataclass(frozen=True)
class Press:
    button: str
    at: float


@dataclass(frozen=True)
class Rotation:
    """The turnstile turned once; ``at`` is the monotonic time the sensor fired."""

    at: float


@dataclass(frozen=True)
class ReaderHealth:
    ok: bool
    reason: str


@dataclass(frozen=True)
class Stop:
    reason: str
