"""The gate role: tap -> per-UID debounce -> admission decision -> relay, signal, event.

Pure apart from its own small state (when each UID was last seen), which only the owner
thread touches. The catalog lookup is done by the runtime and passed in, as is ``now``.
"""

from __future__ import annotations

from controller.roles.actions import Emit, Pulse, Reaction, Signal
from controller.rules.admission import Media, decide
from controller.settings import GateSection
from entrada.codes import Outcome


class GateRole:
    name = "gate"

    def __init__(self, cfg: GateSection, device_id: str) -> None:
        self.cfg = cfg
        self.device_id = device_id
        self._last_seen: dict[str, float] = {}

    def on_tap(self, uid: str, media: Media | None, now: float, catalog_version: int) -> Reaction:
        """React to a credential read at Unix time ``now`` (monotonic ordering assumed)."""
        last = self._last_seen.get(uid)
        self._last_seen[uid] = now
        if last is not None and 0 <= now - last < self.cfg.debounce:
            return Reaction(Outcome.IGNORED_DEBOUNCE)
        decision = decide(media, self.cfg.direction, now)
        data = {
            "uid": uid,
            "direction": self.cfg.direction,
            "outcome": str(decision.code),
            "rule_version": decision.rule_version,
            "catalog_version": catalog_version,
        }
        if decision.allowed:
            return Reaction(
                decision.code,
                (Pulse(self.cfg.relay_pulse), Signal(decision.code), Emit("gate.passage", data)),
            )
        return Reaction(decision.code, (Signal(decision.code), Emit("gate.denied", data)))

    def on_press(self, button: str, now: float) -> Reaction:
        """A staff key: ``open`` lets one person through and is recorded."""
        if button != "open":
            return Reaction(Outcome.IGNORED_BUTTON)
        return Reaction(
            Outcome.MANUAL_OPEN,
            (
                Pulse(self.cfg.relay_pulse),
                Signal(Outcome.MANUAL_OPEN),
                Emit("gate.manual_open", {"button": button, "direction": self.cfg.direction}),
            ),
        )

    def prune(self, now: float) -> None:
        """Forget UIDs not seen within the debounce window (keeps memory bounded)."""
        horizon = now - self.cfg.debounce
        stale = [uid for uid, t in self._last_seen.items() if t < horizon]
        for uid in stale:
            del self._last_seen[uid]
