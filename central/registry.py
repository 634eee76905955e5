"""The device registry: who is online, with which versions, and how healthy.

Devices announce themselves with a retained :class:`~entrada.protocol.Status`: a birth
``online`` on every connect and a will ``offline`` with the same ``epoch``. The epoch grows
by one on every connect, so the rule that decides whether a status is news is a pure
function of the known ``(epoch, state)`` and the incoming one (:func:`accept_status`).
A late will from an old connection must never mark a device offline that has already
come back with a newer birth.

:func:`view` turns stored records into what ``entrada central devices`` shows; a device
that claims to be online but has been silent for ``registry.offline_after`` is ``stale``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

State = Literal["online", "offline", "unknown"]


class Presence(StrEnum):
    """How the registry reports a device."""

    ONLINE = "online"
    OFFLINE = "offline"
    STALE = "stale"  # says online, but silent for longer than registry.offline_after
    UNKNOWN = "unknown"  # seen only through its events, never through a status


def accept_status(
    known_epoch: int | None,
    known_state: State | None,
    epoch: int,
    state: Literal["online", "offline"],
) -> bool:
    """Whether a status ``(epoch, state)`` replaces the known one.

    - nothing known yet (or known only from events, epoch 0): accepted;
    - an older epoch: ignored (a late will or a stale retained birth);
    - a newer epoch: accepted, online or offline (we may have missed that birth);
    - the same epoch: ``online`` after ``online`` is accepted (a repeated birth carries
      fresh versions, outbox depth and faults); ``offline`` ends that connection and is
      accepted; ``online`` after ``offline`` is ignored, because a connection that has
      ended never comes back under the same epoch (a reconnect takes a new one), so it
      can only be a redelivered birth.
    """
    if known_epoch is None or known_state is None or known_state == "unknown":
        return True
    if epoch != known_epoch:
        return epoch > known_epoch
    return not (state == "online" and known_state == "offline")


@dataclass(frozen=True)
class DeviceRecord:
    """One row of the registry as stored."""

    device: str
    role: str | None
    state: State
    epoch: int
    versions: dict[str, Any] | None
    outbox_depth: int
    faults: list[str]
    last_seen: float | None
    first_seen: float


@dataclass(frozen=True)
class DeviceView:
    """One line of ``entrada central devices``."""

    device: str
    role: str | None
    presence: Presence
    epoch: int
    software: str | None
    config_version: int | None
    catalog_version: int | None
    outbox_depth: int
    faults: list[str] = field(default_factory=list)
    last_seen: float | None = None
    silent_for: float | None = None


def presence(record: DeviceRecord, now: float, offline_after: float) -> Presence:
    """Online, offline, unknown, or stale (online but silent too long)."""
    if record.state == "offline":
        return Presence.OFFLINE
    if record.state == "unknown":
        return Presence.UNKNOWN
    if record.last_seen is None or now - record.last_seen > offline_after:
        return Presence.STALE
    return Presence.ONLINE


def view(records: Iterable[DeviceRecord], now: float, offline_after: float) -> list[DeviceView]:
    """The registry as shown to people, sorted by device id."""
    out = []
    for r in sorted(records, key=lambda rec: rec.device):
        versions = r.versions or {}
        out.append(
            DeviceView(
                device=r.device,
                role=r.role,
                presence=presence(r, now, offline_after),
                epoch=r.epoch,
                software=versions.get("software"),
                config_version=versions.get("config"),
                catalog_version=versions.get("catalog"),
                outbox_depth=r.outbox_depth,
                faults=list(r.faults),
                last_seen=r.last_seen,
                silent_for=None if r.last_seen is None else max(0.0, now - r.last_seen),
            )
        )
    return out
