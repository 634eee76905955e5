"""Admission decisions for a credential at a gate.

This is the first cut (issue 2): a known, active, unexpired wristband is admitted;
everything else is denied with a stable code. The tariff engine (stay-time billing,
passes, zones, tabs, offline policies) replaces the body of :func:`decide` without
changing its signature or its callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from entrada.codes import Outcome

RULE_VERSION = "admission/1"

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class Media:
    """What the local catalog says about a credential."""

    uid: str
    status: str  # active | blocked | lost | expired
    valid_until: float | None = None


@dataclass(frozen=True)
class Charge:
    """An amount owed, in minor units of ``currency`` (exact, no floats)."""

    code: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: Outcome
    rule_version: str = RULE_VERSION
    charges: tuple[Charge, ...] = field(default_factory=tuple)


_STATUS_CODES = {
    "blocked": Outcome.DENIED_BLOCKED,
    "lost": Outcome.DENIED_LOST,
    "expired": Outcome.DENIED_EXPIRED,
}


def decide(media: Media | None, direction: Direction, now: float) -> Decision:
    """Admit or deny ``media`` passing in ``direction`` at Unix time ``now``."""
    if media is None:
        return Decision(False, Outcome.DENIED_UNKNOWN)
    denial = _STATUS_CODES.get(media.status)
    if denial is not None:
        return Decision(False, denial)
    if media.status != "active":
        return Decision(False, Outcome.DENIED_BLOCKED)
    if media.valid_until is not None and now > media.valid_until:
        return Decision(False, Outcome.DENIED_EXPIRED)
    return Decision(True, Outcome.GRANTED)
