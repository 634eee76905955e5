"""Queue statistics and wait estimates, computed from visits (pure functions).

A :class:`~central.queue.model.Visit` is one ticket's stay in one service's queue, so a
transferred customer counts once in each service. From visits:

- **waiting time**: first call minus joining the queue (the ticket's issue, or the
  transfer that brought it here); only visits that were called have one;
- **service time**: end minus start of service (the call, when service was finished
  without a start) for visits finished or transferred on from a counter;
- **within target**: the share of called visits whose waiting time was at most the
  service's ``target_wait``;
- **hourly load**: visits joining per site-local hour, and visits finished per hour.

Figures group by service, counter or staff member (:func:`summarise`). The engine holds
today's and yesterday's visits; older days come from the store
(:meth:`central.queue.store.QueueStore.visits`) through the same functions.

**Wait estimate** (:class:`WaitEstimator`): each counter's recent rate is the number of
visits it ended (finished, transferred on, no-show) within ``estimate_window`` divided by
the time it spent on them (call to end), i.e. tickets per second of work; a counter with
no recent history is assumed to work at ``1 / avg_service`` of the service asked about.
A counter serving several services gives each a share by weight, counting only services
with someone waiting (and the one asked about). The service's rate is the sum over its
open counters (all its counters when none is open, so a dispenser before opening time
still prints an estimate), and the wait for someone with ``ahead`` people in front is
``ahead / rate``.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from central.queue.businessday import local_hour
from central.queue.model import Outcome, Visit
from central.queue.settings import QueueSection

Grouping = Literal["service", "counter", "staff"]
#: Handling times below this are clamped (a mis-click finishing at once is not a
#: counter working at 1000 tickets a second).
MIN_HANDLING = 5.0


@dataclass(frozen=True)
class Figures:
    tickets: int  # visits that joined a queue
    served: int
    no_shows: int
    cancelled: int
    transferred: int
    expired: int
    wait_mean: float | None
    wait_median: float | None
    wait_p90: float | None
    wait_max: float | None
    service_mean: float | None
    service_median: float | None
    service_p90: float | None
    within_target: float | None  # share (0..1) of called visits within the target wait
    arrivals_by_hour: tuple[int, ...]  # 24 site-local hours
    served_by_hour: tuple[int, ...]


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def wait_of(v: Visit) -> float | None:
    return None if v.called_at is None else max(0.0, v.called_at - v.queued_at)


def service_time_of(v: Visit) -> float | None:
    if v.outcome not in (Outcome.FINISHED, Outcome.TRANSFERRED) or v.ended_at is None:
        return None
    began = v.started_at if v.started_at is not None else v.called_at
    return None if began is None else max(0.0, v.ended_at - began)


def figures(visits: Iterable[Visit], tz: str, targets: Mapping[str, float]) -> Figures:
    """The figures of ``visits``; ``targets`` maps a service to its target wait (s)."""
    vs = list(visits)
    waits = [w for w in map(wait_of, vs) if w is not None]
    services = [s for s in map(service_time_of, vs) if s is not None]
    called = [(v, w) for v in vs if (w := wait_of(v)) is not None]
    in_target = [w <= targets[v.service] for v, w in called if v.service in targets]
    arrivals = [0] * 24
    served = [0] * 24
    outcomes: dict[Outcome | None, int] = defaultdict(int)
    for v in vs:
        arrivals[local_hour(v.queued_at, tz)] += 1
        outcomes[v.outcome] += 1
        if v.outcome is Outcome.FINISHED and v.ended_at is not None:
            served[local_hour(v.ended_at, tz)] += 1
    return Figures(
        tickets=len(vs),
        served=outcomes[Outcome.FINISHED],
        no_shows=outcomes[Outcome.NO_SHOW],
        cancelled=outcomes[Outcome.CANCELLED],
        transferred=outcomes[Outcome.TRANSFERRED],
        expired=outcomes[Outcome.EXPIRED],
        wait_mean=statistics.fmean(waits) if waits else None,
        wait_median=statistics.median(waits) if waits else None,
        wait_p90=_p90(waits),
        wait_max=max(waits) if waits else None,
        service_mean=statistics.fmean(services) if services else None,
        service_median=statistics.median(services) if services else None,
        service_p90=_p90(services),
        within_target=sum(in_target) / len(in_target) if in_target else None,
        arrivals_by_hour=tuple(arrivals),
        served_by_hour=tuple(served),
    )


_KEYS: dict[str, Callable[[Visit], str | None]] = {
    "service": lambda v: v.service,
    "counter": lambda v: v.counter,
    "staff": lambda v: v.staff,
}


def summarise(
    visits: Iterable[Visit], by: Grouping, tz: str, targets: Mapping[str, float]
) -> dict[str, Figures]:
    """Figures per service, counter or staff member (visits no counter reached have no
    counter or staff, and only count per service)."""
    key = _KEYS[by]
    groups: dict[str, list[Visit]] = defaultdict(list)
    for v in visits:
        k = key(v)
        if k is not None:
            groups[k].append(v)
    return {k: figures(vs, tz, targets) for k, vs in sorted(groups.items())}


def targets_of(settings: QueueSection) -> dict[str, float]:
    return {s.id: s.target_wait for s in settings.services}


# ------------------------------------------------------------------------- estimates


def counter_rates(recent: Iterable[Visit]) -> dict[str, float]:
    """Tickets per second of work at each counter, from visits that ended recently."""
    count: dict[str, int] = defaultdict(int)
    busy: dict[str, float] = defaultdict(float)
    for v in recent:
        if v.counter is None or v.called_at is None or v.ended_at is None:
            continue
        if v.outcome not in (Outcome.FINISHED, Outcome.TRANSFERRED, Outcome.NO_SHOW):
            continue
        count[v.counter] += 1
        busy[v.counter] += max(MIN_HANDLING, v.ended_at - v.called_at)
    return {c: count[c] / busy[c] for c in count}


class WaitEstimator:
    """Wait estimates for one moment (build one per board or status query)."""

    def __init__(
        self,
        settings: QueueSection,
        open_counters: Iterable[str],
        recent: Iterable[Visit],
        waiting: Mapping[str, int],
    ) -> None:
        self.settings = settings
        self.open = set(open_counters)
        self.rates = counter_rates(recent)
        self.waiting = waiting
        self._cache: dict[str, float | None] = {}

    def rate(self, service: str) -> float | None:
        """Tickets per second the counters give ``service``; None when no counter
        serves it."""
        if service in self._cache:
            return self._cache[service]
        sdef = self.settings.service(service)
        serving = [c for c in self.settings.counters if service in c.services]
        staffed = [c for c in serving if c.id in self.open] or serving
        if sdef is None or not staffed:
            self._cache[service] = None
            return None
        total = 0.0
        for c in staffed:
            busy = sum(
                w for s, w in c.services.items() if s == service or self.waiting.get(s, 0) > 0
            )
            share = c.services[service] / busy
            total += self.rates.get(c.id, 1.0 / sdef.avg_service) * share
        self._cache[service] = total
        return total

    def wait(self, service: str, ahead: int) -> int | None:
        """Seconds until someone with ``ahead`` people in front is called."""
        r = self.rate(service)
        if r is None or r <= 0:
            return None
        return round(ahead / r)
