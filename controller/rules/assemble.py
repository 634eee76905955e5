"""Building the engine's inputs from catalog rows and recorded passages.

The gate (from its SQLite copy), central (to replay decisions and answer disputes) and
``entrada rules simulate`` all assemble a decision's inputs with these functions, so all
three decide from the same picture of a wristband:

- the *credential* is the catalog's wristband row;
- an entitlement's *usage* (entries used, first use, days used) is the catalog's baseline
  plus every passage that consumed it (recorded by this gate or its peers);
- the *open tab* and the *time-stops* are those since the wristband's last settled exit
  (a final exit that let it out: a wristband reissued on another day starts afresh);
  a passage out of an inner zone may have charged the tab (``tab_minor``);
- the *history* is its passages of the last :data:`HISTORY_DAYS` days (older ones only
  matter through the usage counters).

Pure: rows in, values out; ``now`` and the site's rules are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from controller.rules.decision import Decision
from controller.rules.model import (
    Credential,
    Direction,
    Entitlement,
    Entitlements,
    Gate,
    History,
    Passage,
    Posting,
    Presence,
    Site,
    Tab,
)
from controller.rules.serial import DecisionInput
from controller.rules.timebands import to_utc
from entrada.protocol import (
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    TimeStopData,
    WristbandData,
)

#: Passages older than this (before ``now``) are left out of the history.
HISTORY_DAYS = 2


@dataclass(frozen=True)
class WristbandRecord:
    """Everything known about one wristband: its catalog rows and its passages."""

    uid: str
    wristband: WristbandData | None
    entitlements: Sequence[tuple[str, EntitlementData]] = ()
    passages: Sequence[PeerPassage] = ()
    postings: Sequence[tuple[str, PostingData]] = ()
    payments: Sequence[tuple[str, PaymentData]] = ()
    timestops: Sequence[TimeStopData] = ()


def credential(uid: str, row: WristbandData | None) -> Credential | None:
    """The engine's credential for a catalog row (None: the catalog does not know it)."""
    if row is None:
        return None
    return Credential(
        uid,
        status=row.status,  # type: ignore[arg-type]
        assurance=row.assurance,  # type: ignore[arg-type]
        valid_until=None if row.valid_until is None else to_utc(row.valid_until),
        deposit_minor=row.deposit_minor,
    )


def visit_start(passages: Iterable[PeerPassage]) -> float | None:
    """When the current visit's account opened: the last settled exit (None: never)."""
    settled = [p.at for p in passages if p.settled]
    return max(settled) if settled else None


def _after(ts: float, start: float | None) -> bool:
    return start is None or ts > start


def usage_of(
    entitlement_id: str, base: EntitlementData, passages: Iterable[PeerPassage], tz: ZoneInfo
) -> Entitlement:
    """The entitlement with its usage: the catalog's baseline plus the consuming passages."""
    days = {date.fromisoformat(d) for d in base.days_used}
    first = None if base.first_used is None else date.fromisoformat(base.first_used)
    entries = base.entries_used
    for p in passages:
        if not p.consumed or p.entitlement_id != entitlement_id:
            continue
        entries += 1
        day = to_utc(p.at).astimezone(tz).date()
        days.add(day)
        first = day if first is None else min(first, day)
    return Entitlement(
        entitlement_id,
        base.tariff_id,
        concession=base.concession,  # type: ignore[arg-type]
        valid_from=None if base.valid_from is None else date.fromisoformat(base.valid_from),
        valid_to=None if base.valid_to is None else date.fromisoformat(base.valid_to),
        entries_used=entries,
        first_used=first,
        days_used=frozenset(days),
    )


def tab_of(record: WristbandRecord) -> Tab:
    """The open tab of the current visit: postings by points of sale, charges of inner
    exits, and payments, all since the last settled exit."""
    start = visit_start(record.passages)
    postings = [
        Posting(ref, row.amount_minor, row.description)
        for ref, row in sorted(record.postings, key=lambda r: (r[1].ts, r[0]))
        if _after(row.ts, start)
    ]
    postings += [
        Posting(f"passage:{p.id}", p.tab_minor, "")
        for p in sorted(record.passages, key=lambda p: (p.at, p.id))
        if p.tab_minor and _after(p.at, start)
    ]
    paid = sum(row.amount_minor for _, row in record.payments if _after(row.ts, start))
    limit = record.wristband.tab_limit_minor if record.wristband is not None else None
    return Tab(tuple(postings), paid_minor=paid, limit_minor=limit)


def passage(p: PeerPassage) -> Passage:
    """A recorded passage as the engine's history item."""
    return Passage(
        to_utc(p.at),
        p.zone_from,
        p.zone_to,
        Direction(p.direction),
        entitlement_id=p.entitlement_id,
        tariff_id=p.tariff_id,
        consumed=p.consumed,
        offline=p.offline,
        gate_id=p.gate,
    )


def history_of(record: WristbandRecord, now: datetime) -> History:
    horizon = now - timedelta(days=HISTORY_DAYS)
    start = visit_start(record.passages)
    return History(
        tuple(passage(p) for p in record.passages if to_utc(p.at) >= horizon),
        tuple(to_utc(t.at) for t in record.timestops if _after(t.at, start)),
    )


def assemble(
    record: WristbandRecord,
    site: Site,
    gate: Gate,
    now: datetime | float,
    *,
    occupancy: Mapping[str, int] | None = None,
    minutes_offline: float | None = None,
) -> DecisionInput:
    """The whole input of one decision about ``record``'s wristband at ``gate``."""
    instant = to_utc(now)
    items = tuple(
        usage_of(ent_id, row, record.passages, site.tz)
        for ent_id, row in sorted(record.entitlements, key=lambda r: r[0])
    )
    return DecisionInput(
        credential(record.uid, record.wristband),
        Entitlements(items, tab_of(record)),
        history_of(record, instant),
        Presence(dict(occupancy or {})),
        site,
        gate,
        instant,
        minutes_offline or None,
    )


def recorded_passage(
    decision: Decision, uid: str, gate: Gate, gate_id: str, at: float, passage_id: str
) -> PeerPassage:
    """What a granted decision adds to the wristband's passages when the visitor walks
    through (the same record goes to the outbox, to the peers and to central)."""
    if not decision.allowed:
        raise ValueError("only a granted decision becomes a passage")
    usage = decision.usage
    final_exit = gate.direction is Direction.OUT and gate.zone_to is None
    return PeerPassage(
        id=passage_id,
        uid=uid,
        at=at,
        zone_from=gate.zone_from,
        zone_to=gate.zone_to,
        direction=gate.direction.value,
        entitlement_id=usage.entitlement_id if usage is not None else None,
        tariff_id=usage.tariff_id if usage is not None else None,
        consumed=bool(usage is not None and usage.consumed),
        offline=decision.offline,
        gate=gate_id,
        tab_minor=decision.charged_minor if decision.post_to_tab else 0,
        settled=final_exit,
    )


def occupancy_of(site: Site, inside: Mapping[str, int]) -> dict[str, int]:
    """People in each zone, inner zones included, from the count of people whose
    innermost zone is each zone."""
    total: dict[str, int] = {}
    for zone, count in inside.items():
        if zone not in site.zones.zones:
            continue
        for z in site.zones.path(zone):
            total[z] = total.get(z, 0) + count
    return total
