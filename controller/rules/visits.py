"""Reading a credential's history: is it inside a zone, since when, and its visits.

A *visit* of an entitlement starts at a passage that consumed it and ends at the first
later passage that leaves the visit's zone. A visit with no recorded exit stays open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from controller.rules.model import Passage
from controller.rules.timebands import day_bounds, overlap
from controller.rules.zones import ZoneTree


@dataclass(frozen=True)
class Visit:
    start: Passage
    end: datetime | None  # None: still inside (or the exit was never recorded)


def last_crossing(
    tree: ZoneTree, passages: Iterable[Passage], zone: str, until: datetime
) -> tuple[Passage, bool] | None:
    """The last passage at or before ``until`` that entered (True) or left (False) ``zone``."""
    found: tuple[Passage, bool] | None = None
    for p in passages:
        if p.at > until:
            break
        if zone in tree.entered(p.zone_from, p.zone_to):
            found = (p, True)
        elif zone in tree.left(p.zone_from, p.zone_to):
            found = (p, False)
    return found


def stay_entry(
    tree: ZoneTree, passages: Iterable[Passage], zone: str, until: datetime
) -> Passage | None:
    """The passage that entered ``zone`` if the history says the credential is inside it."""
    last = last_crossing(tree, passages, zone, until)
    return last[0] if last is not None and last[1] else None


def visit_zone(tree: ZoneTree, passage: Passage) -> str | None:
    """The outermost zone a passage entered (where a visit it starts takes place)."""
    entered = tree.entered(passage.zone_from, passage.zone_to)
    return entered[0] if entered else None


def visits(tree: ZoneTree, passages: tuple[Passage, ...], entitlement_id: str) -> list[Visit]:
    """Every visit of the entitlement, oldest first."""
    result: list[Visit] = []
    for i, p in enumerate(passages):
        zone = visit_zone(tree, p)
        if not p.consumed or p.entitlement_id != entitlement_id or zone is None:
            continue
        end = next(
            (q.at for q in passages[i + 1 :] if zone in tree.left(q.zone_from, q.zone_to)),
            None,
        )
        result.append(Visit(p, end))
    return result


def used_on(
    day: date, tz: ZoneInfo, closed: Iterable[Visit], before: datetime | None = None
) -> timedelta:
    """Time spent on the local ``day`` in the given closed visits that started before
    ``before`` (all of them if ``None``)."""
    bounds = day_bounds(day, tz)
    used = timedelta(0)
    for v in closed:
        if v.end is None or (before is not None and v.start.at >= before):
            continue
        used += overlap((v.start.at, v.end), bounds)
    return used
