"""The actions a role can ask the runtime to carry out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from entrada.codes import Outcome


@dataclass(frozen=True)
class Pulse:
    """Energise the relay for ``seconds`` (timed by the driver, never by sleeping)."""

    seconds: float


@dataclass(frozen=True)
class Signal:
    """Show an outcome on the indicator (and, later, the screen)."""

    outcome: str


@dataclass(frozen=True)
class Emit:
    """Record an event in the outbox, in the same transaction as the reaction's state."""

    kind: str
    data: dict[str, Any]


Action = Pulse | Signal | Emit


@dataclass(frozen=True)
class Reaction:
    outcome: Outcome
    actions: tuple[Action, ...] = field(default_factory=tuple)
