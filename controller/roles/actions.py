"""The actions a role can ask the runtime to carry out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from entrada.protocol import PeerPassage


@dataclass(frozen=True)
class Pulse:
    """Energise the relay for ``seconds`` (timed by the driver, never by sleeping)."""

    seconds: float


@dataclass(frozen=True)
class Signal:
    """Show an outcome on the indicator (and its explanation on a screen, if any)."""

    outcome: str
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Emit:
    """Record an event in the outbox, in the same transaction as the reaction's state."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Record:
    """Add a passage to the passage log (same transaction as the events), count it in
    the zone occupancy and share it with the peer gates."""

    passage: PeerPassage


Action = Pulse | Signal | Emit | Record


@dataclass(frozen=True)
class Reaction:
    #: An ``entrada.codes.Outcome`` or, for a decided tap, the engine's ``RuleCode``.
    outcome: str
    actions: tuple[Action, ...] = field(default_factory=tuple)
