"""Next-ticket policies: which waiting ticket a counter's "call next" takes.

A policy is pure. :meth:`NextTicketPolicy.pick` gets the candidates (the tickets the
counter may call, each with the counter's weight for its service), the counter's policy
state and ``now``, and returns one of them. :meth:`NextTicketPolicy.record` is told about
every call made at the counter (picked or called by hand) with the candidates there were,
and returns the new policy state: a small ``{str: int}`` map the engine keeps per counter
and persists, so a restart does not reset a ratio half-way.

Appointments go ahead of walk-ins whatever the policy: the engine hands ``pick`` only
the appointment candidates while there are any (:func:`eligible`).

Policies (``POLICIES`` maps the config name to the class):

- ``fifo``: the earliest ticket across the counter's services (``queue_at``, then the
  number). So within a service, a later ticket is never called before an earlier one.
- ``priority_ratio`` (``ratio = "P:N"``, ``cap``): while both kinds wait, runs of
  ``min(P, cap)`` priority calls alternate with ``N`` normal calls ("1:2": one priority per
  two normal). Every call counts, whoever was waiting: a priority ticket arriving after
  ``N`` normal calls goes next, a normal ticket arriving during a burst of priority calls
  goes next once the run is ``min(P, cap)`` long. So a quiet spell of one kind builds up
  no debt beyond one run that the other kind would pay for later. FIFO within each kind.
- ``longest_wait``: the greatest ``weight * (now - queue_at)`` (the counter's weight for
  the ticket's service), ties to the earliest ticket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from central.queue.model import TicketKind

PolicyState = Mapping[str, int]


@dataclass(frozen=True)
class Candidate:
    """A ticket as a policy sees it."""

    ticket_id: str
    service: str
    kind: TicketKind
    queue_at: float
    number: int
    weight: float = 1.0  # the counter's weight for ``service``

    @property
    def order(self) -> tuple[float, int, str]:
        return (self.queue_at, self.number, self.ticket_id)

    def weighted_wait(self, now: float) -> float:
        return self.weight * (now - self.queue_at)


class NextTicketPolicy(Protocol):
    name: ClassVar[str]

    def pick(
        self, candidates: Sequence[Candidate], counter: str, state: PolicyState, now: float
    ) -> Candidate | None:
        """One of ``candidates`` (None only when there are none)."""
        ...

    def record(
        self, state: PolicyState, called: Candidate, candidates: Sequence[Candidate]
    ) -> dict[str, int]:
        """The counter's state after ``called`` was called while ``candidates`` waited
        (``called`` is usually one of them; a hand call may be of another ticket)."""
        ...


def eligible(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates a policy chooses among: the appointments while there are any."""
    booked = [c for c in candidates if c.kind is TicketKind.APPOINTMENT]
    return booked or list(candidates)


def earliest(candidates: Sequence[Candidate]) -> Candidate | None:
    return min(candidates, key=lambda c: c.order, default=None)


class FifoPolicy:
    name: ClassVar[str] = "fifo"

    def pick(
        self, candidates: Sequence[Candidate], counter: str, state: PolicyState, now: float
    ) -> Candidate | None:
        return earliest(candidates)

    def record(
        self, state: PolicyState, called: Candidate, candidates: Sequence[Candidate]
    ) -> dict[str, int]:
        return dict(state)


class LongestWaitPolicy:
    name: ClassVar[str] = "longest_wait"

    def pick(
        self, candidates: Sequence[Candidate], counter: str, state: PolicyState, now: float
    ) -> Candidate | None:
        if not candidates:
            return None
        return min(candidates, key=lambda c: (-c.weighted_wait(now), c.order))

    def record(
        self, state: PolicyState, called: Candidate, candidates: Sequence[Candidate]
    ) -> dict[str, int]:
        return dict(state)


def parse_ratio(ratio: str) -> tuple[int, int]:
    """``"P:N"`` (both at least 1) as ``(P, N)``; ValueError otherwise."""
    parts = ratio.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"ratio must be 'P:N' (priority:normal calls), got {ratio!r}")
    p, n = (int(x) for x in parts)
    if p < 1 or n < 1:
        raise ValueError(f"both sides of the ratio must be at least 1, got {ratio!r}")
    return p, n


class PriorityRatioPolicy:
    """State: ``streak`` (priority calls in a row) and ``since`` (normal calls since the
    last priority call, counted up to N; N when there was none)."""

    name: ClassVar[str] = "priority_ratio"

    def __init__(self, ratio: str = "1:2", cap: int = 2) -> None:
        self.priority, self.normal = parse_ratio(ratio)
        if cap < 1:
            raise ValueError(f"cap must be at least 1, got {cap}")
        self.cap = cap
        #: The longest priority run while normal tickets wait.
        self.run = min(self.priority, cap)

    def pick(
        self, candidates: Sequence[Candidate], counter: str, state: PolicyState, now: float
    ) -> Candidate | None:
        by_kind = {kind: earliest([c for c in candidates if c.kind is kind]) for kind in TicketKind}
        booked = by_kind[TicketKind.APPOINTMENT]
        if booked is not None:
            return booked  # the engine offers these alone; here for direct use
        first, normal = by_kind[TicketKind.PRIORITY], by_kind[TicketKind.NORMAL]
        if first is None or normal is None:
            return first or normal
        streak = state.get("streak", 0)
        since = state.get("since", self.normal)
        in_run = 0 < streak < self.run
        return first if in_run or (streak == 0 and since >= self.normal) else normal

    def record(
        self, state: PolicyState, called: Candidate, candidates: Sequence[Candidate]
    ) -> dict[str, int]:
        if called.kind is TicketKind.APPOINTMENT:
            return dict(state)
        if called.kind is TicketKind.PRIORITY:
            return {"streak": state.get("streak", 0) + 1, "since": 0}
        since = state.get("since", self.normal)
        return {"streak": 0, "since": min(since + 1, self.normal)}


POLICIES: dict[str, type[Any]] = {
    FifoPolicy.name: FifoPolicy,
    PriorityRatioPolicy.name: PriorityRatioPolicy,
    LongestWaitPolicy.name: LongestWaitPolicy,
}


def make_policy(name: str, params: Mapping[str, Any] | None = None) -> NextTicketPolicy:
    """The policy named ``name`` built with ``params`` (KeyError for an unknown name)."""
    policy: NextTicketPolicy = POLICIES[name](**(params or {}))
    return policy
