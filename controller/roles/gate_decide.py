"""A gate's decision about one tap, and the record it leaves.

The runtime looks up everything about the wristband (:class:`TapContext`); this module
asks the rules engine (``admission = "tariffs"``) or checks the medium alone
(``admission = "media"``) and returns a :class:`TapDecision`: the outcome code, what the
visitor is shown, the event's data (with the logged input, so central can replay the
decision) and, for a grant, the passage the visitor makes by walking through.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.rules import admission
from controller.rules.assemble import WristbandRecord, assemble, recorded_passage
from controller.rules.errors import RulesInputError
from controller.rules.model import Direction, Gate, Site
from controller.rules.serial import dump_decision, dump_logged_input
from controller.settings import GateSection
from entrada.codes import Outcome
from entrada.protocol import PeerPassage


@dataclass(frozen=True)
class TapContext:
    """What the runtime looked up for a tap (the role itself does no IO)."""

    record: WristbandRecord
    #: The site's rules (None: none published, or they could not be read).
    site: Site | None
    catalog_version: int
    #: People per zone, inner zones included (from this gate and its peers).
    occupancy: Mapping[str, int] = field(default_factory=dict)
    #: How long the gate has been without central (None: in contact now).
    minutes_offline: float | None = None


@dataclass(frozen=True)
class TapDecision:
    outcome: str
    allowed: bool
    #: The event's data (``gate.passage``, ``gate.granted`` or ``gate.denied``).
    data: dict[str, Any]
    #: What a screen shows with the outcome: explanation ``key`` and ``params``.
    detail: dict[str, Any] | None = None
    #: The passage a grant leads to (committed at once, or when the turnstile turns).
    passage: PeerPassage | None = None


def gate_model(cfg: GateSection, device_id: str) -> Gate:
    return Gate(
        device_id,
        cfg.zone_from or None,
        cfg.zone_to or None,
        Direction(cfg.direction),
        collects_media=cfg.collects_media,
    )


def decide_tap(
    cfg: GateSection, device_id: str, uid: str, ctx: TapContext, now: float
) -> TapDecision:
    """Decide a tap of ``uid`` at Unix time ``now``."""
    base: dict[str, Any] = {
        "uid": uid,
        "direction": cfg.direction,
        "catalog_version": ctx.catalog_version,
        "minutes_offline": ctx.minutes_offline,
    }
    if cfg.admission == "media":
        return _media(cfg, uid, ctx, now, base)
    if ctx.site is None:
        return _refuse(Outcome.DENIED_NO_RULES, base)
    gate = gate_model(cfg, device_id)
    try:
        inputs = assemble(
            ctx.record,
            ctx.site,
            gate,
            now,
            occupancy=ctx.occupancy,
            minutes_offline=ctx.minutes_offline,
        )
        decision = inputs.decide()
    except RulesInputError as err:  # the gate's zones are not the rules' zones
        return _refuse(Outcome.DENIED_GATE_MISCONFIGURED, {**base, "error": str(err)})
    data = {
        **base,
        "outcome": str(decision.code),
        "rule_version": decision.rule_version,
        "decision": dump_decision(decision),
        "input": dump_logged_input(inputs),
    }
    detail = {"key": decision.explanation.key, "params": decision.explanation.as_dict()}
    if not decision.allowed:
        return TapDecision(str(decision.code), False, data, detail)
    passage = recorded_passage(decision, uid, gate, device_id, now, uuid.uuid4().hex)
    return TapDecision(str(decision.code), True, data, detail, passage)


def _refuse(code: Outcome, base: dict[str, Any]) -> TapDecision:
    data = {**base, "outcome": str(code), "rule_version": "gate/1"}
    return TapDecision(str(code), False, data, {"key": str(code), "params": {}})


def _media(
    cfg: GateSection, uid: str, ctx: TapContext, now: float, base: dict[str, Any]
) -> TapDecision:
    row = ctx.record.wristband
    media = None if row is None else admission.Media(uid, row.status, row.valid_until)
    decision = admission.decide(media, cfg.direction, now)
    data = {**base, "outcome": str(decision.code), "rule_version": decision.rule_version}
    return TapDecision(str(decision.code), decision.allowed, data)
