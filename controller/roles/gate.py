"""The gate role: tap -> per-UID debounce -> admission decision -> relay, signal, event.

Pure apart from its own small state, which only the owner thread touches: when each UID
was last seen and, with a rotation sensor, the passages waiting for the turnstile to turn.
The catalog lookup is done by the runtime and passed in, as is ``now`` (Unix time).

Without a rotation sensor a grant is a passage at once (``gate.passage``). With one, a
grant (or a staff opening) is only the decision, recorded as ``gate.granted`` (or
``gate.manual_open``), and opens a *pending passage*. Pending passages form a FIFO queue of
at most :data:`MAX_PENDING`:

- a rotation commits the oldest one -> ``gate.passage`` (with ``granted_at`` and
  ``rotated_at``); the sensor cannot tell who walked through, so with two visitors granted
  one after the other the first grant is the one committed;
- a rotation with nothing pending -> ``gate.rotation_unexpected`` and a signal (a
  tailgater, or the arm forced);
- a passage not turned within ``gate.rotation_timeout`` -> ``gate.annulled``, reason
  ``timeout``: the entry is not counted; a grant that finds the queue full annuls the
  oldest (``overflow``); :meth:`GateRole.on_stop` annuls the rest (``shutdown``).

Every method that sees time first annuls what has expired, so the outcome does not depend
on how often :meth:`GateRole.on_tick` is called. The queue lives in memory only: a crash
loses it (the ``gate.granted`` events are already durable; central sees a grant with
neither a passage nor an annulment, which is not an entry). ``granted_at`` is in all three
events so central can pair them per device and UID. If the wall clock steps back, a
pending deadline is pulled in to at most ``rotation_timeout`` from the new time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from controller.roles.actions import Action, Emit, Pulse, Reaction, Record, Signal
from controller.roles.gate_decide import TapContext, decide_tap
from controller.settings import GateSection
from entrada.codes import AnnulReason, Outcome
from entrada.protocol import PeerPassage

#: Most passages waiting for a rotation at once; one more annuls the oldest.
MAX_PENDING = 32


@dataclass
class PendingPassage:
    """An opened turnstile waiting to turn."""

    granted_at: float
    deadline: float
    #: The decision's fields, repeated in the passage or the annulment.
    record: dict[str, Any]
    #: The passage the turn commits (None for a staff opening: nobody is known).
    passage: PeerPassage | None = None


class GateRole:
    name = "gate"

    def __init__(self, cfg: GateSection, device_id: str, *, rotation: bool = False) -> None:
        self.cfg = cfg
        self.device_id = device_id
        #: True when a rotation sensor confirms passages (``[drivers] rotation``).
        self.rotation = rotation
        self._last_seen: dict[str, float] = {}
        self._pending: deque[PendingPassage] = deque()

    @property
    def pending(self) -> int:
        """How many passages are waiting for the turnstile to turn."""
        return len(self._pending)

    def repeats(self, uid: str, now: float) -> bool:
        """Whether a read of ``uid`` at ``now`` is the same tap as the last one (within the
        debounce time): :meth:`on_tap` will ignore it, so the caller need look nothing up."""
        last = self._last_seen.get(uid)
        return last is not None and 0 <= now - last < self.cfg.debounce

    def on_tap(self, uid: str, ctx: TapContext, now: float) -> Reaction:
        """React to a credential read at Unix time ``now`` (monotonic ordering assumed)."""
        repeated = self.repeats(uid, now)
        self._last_seen[uid] = now
        if repeated:
            return Reaction(Outcome.IGNORED_DEBOUNCE)
        tap = decide_tap(self.cfg, self.device_id, uid, ctx, now)
        shown = Signal(tap.outcome, tap.detail)
        if not tap.allowed:
            return Reaction(tap.outcome, (shown, Emit("gate.denied", tap.data)))
        opening = (Pulse(self.cfg.relay_pulse), shown)
        passage = tap.passage
        if not self.rotation:
            committed: tuple[Action, ...] = ()
            data = tap.data
            if passage is not None:
                data = {**data, "passage": passage.model_dump()}
                committed = (Record(passage),)
            return Reaction(tap.outcome, (*opening, Emit("gate.passage", data), *committed))
        return self._open(
            tap.outcome, opening, Emit("gate.granted", tap.data), tap.data, now, passage
        )

    def on_press(self, button: str, now: float) -> Reaction:
        """A staff key: ``open`` lets one person through and is recorded."""
        if button != "open":
            return Reaction(Outcome.IGNORED_BUTTON)
        opening = (Pulse(self.cfg.relay_pulse), Signal(Outcome.MANUAL_OPEN))
        opened = Emit("gate.manual_open", {"button": button, "direction": self.cfg.direction})
        if not self.rotation:
            return Reaction(Outcome.MANUAL_OPEN, (*opening, opened))
        # The passage it opens says how it was let through (not "granted": no decision).
        record = {**opened.data, "outcome": str(Outcome.MANUAL_OPEN)}
        return self._open(Outcome.MANUAL_OPEN, opening, opened, record, now)

    def on_rotation(self, now: float) -> Reaction:
        """The turnstile turned at Unix time ``now``: commit the oldest pending passage."""
        annulled = self._expire(now)
        if not self._pending:
            data = {
                "direction": self.cfg.direction,
                "outcome": str(Outcome.ROTATION_UNEXPECTED),
                "rotated_at": now,
            }
            return Reaction(
                Outcome.ROTATION_UNEXPECTED,
                (
                    *annulled,
                    Signal(Outcome.ROTATION_UNEXPECTED),
                    Emit("gate.rotation_unexpected", data),
                ),
            )
        pending = self._pending.popleft()
        data = {**pending.record, "granted_at": pending.granted_at, "rotated_at": now}
        committed: tuple[Action, ...] = ()
        if pending.passage is not None:
            # the visitor walks through when the turnstile turns, not when it unlocked
            walked = pending.passage.model_copy(update={"at": now})
            data["passage"] = walked.model_dump()
            committed = (Record(walked),)
        return Reaction(
            Outcome.PASSAGE_COMMITTED, (*annulled, Emit("gate.passage", data), *committed)
        )

    def on_tick(self, now: float) -> Reaction | None:
        """Annul the passages whose turnstile did not turn in time; None if there were none."""
        annulled = self._expire(now)
        return Reaction(Outcome.PASSAGE_ANNULLED, annulled) if annulled else None

    def on_stop(self, now: float) -> Reaction | None:
        """The daemon stops cleanly: annul every pending passage (reason ``shutdown``)."""
        annulled = tuple(self._annulment(p, now, AnnulReason.SHUTDOWN) for p in self._pending)
        self._pending.clear()
        return Reaction(Outcome.PASSAGE_ANNULLED, annulled) if annulled else None

    def prune(self, now: float) -> None:
        """Forget UIDs not seen within the debounce window (keeps memory bounded)."""
        horizon = now - self.cfg.debounce
        stale = [uid for uid, t in self._last_seen.items() if t < horizon]
        for uid in stale:
            del self._last_seen[uid]

    # ---------------------------------------------------------------- pending

    def _open(
        self,
        outcome: str,
        opening: tuple[Action, ...],
        opened: Emit,
        record: dict[str, Any],
        now: float,
        passage: PeerPassage | None = None,
    ) -> Reaction:
        """Unlock, record the opening (``opened`` + ``granted_at``) and queue a pending
        passage that will repeat ``record``."""
        annulled = list(self._expire(now))
        if len(self._pending) >= MAX_PENDING:
            oldest = self._pending.popleft()
            annulled.append(self._annulment(oldest, now, AnnulReason.OVERFLOW))
        self._pending.append(PendingPassage(now, now + self.cfg.rotation_timeout, record, passage))
        opened = Emit(opened.kind, {**opened.data, "granted_at": now})
        return Reaction(outcome, (*opening, *annulled, opened))

    def _expire(self, now: float) -> tuple[Emit, ...]:
        """Annul (reason ``timeout``) every pending passage whose deadline has passed."""
        latest = now + self.cfg.rotation_timeout
        expired: list[PendingPassage] = []
        waiting: list[PendingPassage] = []
        for passage in self._pending:
            passage.deadline = min(passage.deadline, latest)  # the clock may have stepped back
            (expired if now >= passage.deadline else waiting).append(passage)
        if expired:
            self._pending = deque(waiting)
        return tuple(self._annulment(p, now, AnnulReason.TIMEOUT) for p in expired)

    def _annulment(self, passage: PendingPassage, now: float, reason: AnnulReason) -> Emit:
        data = {
            **passage.record,
            "granted_at": passage.granted_at,
            "annulled_at": now,
            "reason": str(reason),
        }
        return Emit("gate.annulled", data)
