"""Tapping a gate role with a catalog row, as the runtime does after its lookup."""

from __future__ import annotations

from controller.roles.actions import Reaction
from controller.roles.gate import GateRole
from controller.roles.gate_decide import TapContext
from controller.rules.admission import Media
from controller.rules.assemble import WristbandRecord
from entrada.protocol import WristbandData


def tap(
    gate: GateRole, uid: str, media: Media | None, now: float, catalog_version: int = 1
) -> Reaction:
    row = (
        None if media is None else WristbandData(status=media.status, valid_until=media.valid_until)
    )
    ctx = TapContext(WristbandRecord(uid, row), None, catalog_version)
    return gate.on_tap(uid, ctx, now)
