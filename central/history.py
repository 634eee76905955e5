"""A wristband's history as central knows it: for replays, postings and disputes.

Central has two sources about a wristband: the catalog (the wristband row, its
entitlements, the postings of points of sale, the payments and the kiosk time-stops) and
the events its gates sent (``gate.passage`` with the passage, the decision and the input it
was made from; ``gate.denied``; ``gate.annulled``). From them:

- :func:`wristband_record` builds the engine's picture of the wristband
  (:class:`~controller.rules.assemble.WristbandRecord`), optionally as it was before an
  instant, for a replay (:mod:`central.replay`) or a posting;
- :func:`wristband_history` lists everything that happened to it, in time order, with
  totals: the view a manager answers a dispute from.

Both read one SQLite connection, given as is or as the :class:`SqliteStorage` that holds
it; the owner of the connection keeps to its own thread. Events are found through an
expression index on ``json_extract(data, '$.uid')`` that :func:`ensure_schema` creates.

Amounts are integer minor units with their currency; an item's fields keep their names
(the API and ``entrada wristband history --json`` publish them).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from central.catalog_store import SqliteCatalog
from central.sqlite_store import SqliteStorage
from central.store import StoredEvent
from controller.rules.assemble import WristbandRecord, tab_of, usage_of
from controller.rules.catalog_schema import parse_catalog
from controller.rules.codes import ChargeCode
from controller.rules.decision import Decision, Explanation
from controller.rules.errors import CatalogError, RulesInputError
from controller.rules.model import Site
from controller.rules.serial import load_decision
from entrada.errors import StoreError
from entrada.protocol import (
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    TimeStopData,
    WristbandData,
)

logger = logging.getLogger(__name__)

#: A connection to the central store, or the store object that holds one.
Db = sqlite3.Connection | SqliteStorage

#: Events that carry a wristband's uid and say something about it.
PASSAGE, DENIED, ANNULLED = "gate.passage", "gate.denied", "gate.annulled"

SCHEMA = """
CREATE INDEX IF NOT EXISTS events_uid ON events (json_extract(data, '$.uid'))
    WHERE json_extract(data, '$.uid') IS NOT NULL
"""

UTC = ZoneInfo("UTC")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the index this module reads events by (idempotent; call it with the store's
    schema, on a writable connection)."""
    conn.execute(SCHEMA)


# ------------------------------------------------------------------- reading the store


class _CatalogReader(SqliteCatalog):
    """The store's catalog reads on a bare connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.path = Path("<connection>")


def connection(db: Db) -> sqlite3.Connection:
    """The SQLite connection of ``db``."""
    if isinstance(db, sqlite3.Connection):
        return db
    return db._conn  # the store's own connection, used on the thread that owns the store


def catalog(db: Db) -> SqliteCatalog:
    """The catalog reads (``catalog_row``, ``catalog_rows_for_uid``, ``rules_document``)."""
    if isinstance(db, sqlite3.Connection):
        return _CatalogReader(db)
    return db


def uid_events(db: Db, uid: str, kinds: Iterable[str] | None = None) -> list[StoredEvent]:
    """The stored events whose data names ``uid``, oldest first (by the device's time)."""
    sql = (
        "SELECT device, stream, seq, id, kind, ts, data, received_at FROM events "
        "WHERE json_extract(data, '$.uid') = ?"
    )
    args: list[Any] = [uid]
    wanted = list(kinds) if kinds is not None else None
    if wanted is not None:
        sql += f" AND kind IN ({','.join('?' * len(wanted))})"
        args += wanted
    try:
        rows = connection(db).execute(sql + " ORDER BY ts, device, stream, seq", args).fetchall()
    except sqlite3.Error as err:
        raise StoreError(f"store read failed: {err}") from err
    return [StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]


def site_at(db: Db, at_version: int | None = None) -> Site | None:
    """The site's rules in force at catalog version ``at_version`` (the latest: None), or
    None when no rules were published by then. Raises CatalogError if they are invalid."""
    found = catalog(db).rules_document(at_version)
    if found is None:
        return None
    version, document = found
    return parse_catalog({**document, "version": version})


def event_passage(event: StoredEvent) -> PeerPassage | None:
    """The passage a ``gate.passage`` event recorded (None if it has none, or a bad one)."""
    raw = event.data.get("passage")
    if event.kind != PASSAGE or raw is None:
        return None
    try:
        return PeerPassage.model_validate(raw)
    except ValidationError as err:
        logger.debug(  # reported in WristbandHistory.unreadable
            "event %s/%s/%s: unreadable passage: %s",
            event.device,
            event.stream,
            event.seq,
            err.errors()[0]["msg"],
        )
        return None


def event_decision(event: StoredEvent) -> Decision | None:
    """The decision an event logged (None if it has none, or one that cannot be read)."""
    raw = event.data.get("decision")
    if not isinstance(raw, Mapping):
        return None
    try:
        return load_decision(raw)
    except (RulesInputError, TypeError, ValueError, KeyError):
        return None


def wristband_record(
    db: Db, uid: str, before: float | None = None, exclude_event: str | None = None
) -> WristbandRecord:
    """Central's picture of wristband ``uid``: its catalog rows and every passage its gates
    recorded (each once).

    ``before`` (Unix time) keeps only what happened before it: passages, postings,
    payments and time-stops (the wristband and entitlement rows are the current ones).
    ``exclude_event`` leaves out the passage of that ``gate.passage`` event (a replay of
    a decision must not see the passage the decision itself made).
    """
    reader = catalog(db)
    wristband = reader.catalog_row("wristband", uid)
    entitlements: list[tuple[str, EntitlementData]] = []
    postings: list[tuple[str, PostingData]] = []
    payments: list[tuple[str, PaymentData]] = []
    timestops: list[TimeStopData] = []

    def earlier(ts: float) -> bool:
        return before is None or ts < before

    for _entity, key, _version, data in reader.catalog_rows_for_uid(uid):
        if isinstance(data, EntitlementData):
            entitlements.append((key, data))
        elif isinstance(data, PostingData) and earlier(data.ts):
            postings.append((key, data))
        elif isinstance(data, PaymentData) and earlier(data.ts):
            payments.append((key, data))
        elif isinstance(data, TimeStopData) and earlier(data.at):
            timestops.append(data)
    passages: dict[str, PeerPassage] = {}
    for event in uid_events(db, uid, (PASSAGE,)):
        p = event_passage(event)
        if p is None or p.uid != uid or not earlier(p.at):
            continue
        if exclude_event is not None and exclude_event in (event.id, p.id):
            continue
        passages.setdefault(p.id, p)
    return WristbandRecord(
        uid,
        wristband if isinstance(wristband, WristbandData) else None,
        entitlements=sorted(entitlements, key=lambda r: r[0]),
        passages=sorted(passages.values(), key=lambda p: (p.at, p.id)),
        postings=sorted(postings, key=lambda r: (r[1].ts, r[0])),
        payments=sorted(payments, key=lambda r: (r[1].ts, r[0])),
        timestops=sorted(timestops, key=lambda t: t.at),
    )


# ---------------------------------------------------------------------------- the view


class ItemKind(StrEnum):
    """What one line of a wristband's history is. Stable: reports and clients key on it."""

    ENTRY = "entry"  # through a gate from the outside
    EXIT = "exit"  # through a gate to the outside
    ZONE_MOVE = "zone_move"  # between two zones (e.g. pool -> sauna)
    DENIED = "denied"  # a gate refused the wristband (``code`` says why)
    ANNULLED = "annulled"  # a grant whose turnstile never turned: no passage
    CHARGE_SETTLED = "charge.settled"  # a charge line settled at a final exit
    CHARGE_POSTED = "charge.posted"  # a charge an inner exit posted to the tab
    CREDIT = "credit"  # the deposit applied to what was due, or paid back
    POSTING = "posting"  # a point of sale posted to the tab
    PAYMENT = "payment"  # money paid (kiosk, cashier)
    TIMESTOP = "timestop"  # a kiosk tap that stopped the stay clock


#: Order of items at the same instant.
_ORDER = {kind: n for n, kind in enumerate(ItemKind)}


@dataclass(frozen=True)
class HistoryItem:
    """One thing that happened to a wristband.

    ``at`` is Unix time; ``code`` a RuleCode (passages, denials) or a ChargeCode (charge
    and credit lines); ``gate`` the device that decided; ``offline`` whether it decided
    without central; ``amount_minor`` with ``currency`` for money lines; ``explanation``
    ``{"key", "params"}`` for a screen to render; ``ref`` the event id, catalog key or
    posting reference; ``description`` a point of sale's or payment method's text.
    """

    at: float
    kind: ItemKind
    code: str | None = None
    gate: str | None = None
    zone_from: str | None = None
    zone_to: str | None = None
    offline: bool = False
    amount_minor: int | None = None
    currency: str | None = None
    explanation: dict[str, Any] | None = None
    ref: str | None = None
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["kind"] = str(self.kind)
        return doc


@dataclass(frozen=True)
class Totals:
    """Sums over the whole history, in minor units of ``currency``.

    ``charged_minor``: what the gates charged (entry prices at exit, overtime, stays),
    settled at exits or posted to the tab; ``posted_minor``: points of sale's postings;
    ``paid_minor``: payments; ``refunded_minor``: deposits paid back; ``settled_minor``:
    everything final exits settled (their charges and the tab); ``balance_minor``: the
    open tab of the current visit less what was paid in it (``assemble.tab_of``; negative:
    paid ahead, e.g. overtime paid at a kiosk before it is charged at the exit).
    """

    currency: str | None
    charged_minor: int = 0
    posted_minor: int = 0
    paid_minor: int = 0
    refunded_minor: int = 0
    settled_minor: int = 0
    balance_minor: int = 0


@dataclass(frozen=True)
class WristbandHistory:
    """Everything about one wristband: its catalog row, its entitlements (with central's
    usage counts), its history in time order and the totals."""

    uid: str
    wristband: dict[str, Any] | None
    entitlements: list[dict[str, Any]]
    items: list[HistoryItem]
    totals: Totals
    #: The site's time zone (for showing times), None when no rules are published.
    timezone: str | None = None
    #: Events that could not be read (never hidden silently).
    unreadable: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """Whether central knows this wristband at all (a catalog row or any event)."""
        return self.wristband is not None or bool(self.items) or bool(self.entitlements)

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "wristband": self.wristband,
            "entitlements": self.entitlements,
            "items": [i.as_dict() for i in self.items],
            "totals": asdict(self.totals),
            "timezone": self.timezone,
            "unreadable": list(self.unreadable),
        }


def explanation_dict(explanation: Explanation) -> dict[str, Any]:
    return {"key": explanation.key, "params": dict(explanation.params)}


def _passage_kind(p: PeerPassage) -> ItemKind:
    if p.direction == "in" and p.zone_from is None:
        return ItemKind.ENTRY
    if p.direction == "out" and p.zone_to is None:
        return ItemKind.EXIT
    return ItemKind.ZONE_MOVE


def _gate_zones(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The zones of the gate named in a logged input (None, None if not readable)."""
    doc = data.get("input")
    gate = doc.get("gate") if isinstance(doc, Mapping) else None
    if not isinstance(gate, Mapping):
        return None, None
    zf, zt = gate.get("zone_from"), gate.get("zone_to")
    return (zf if isinstance(zf, str) else None), (zt if isinstance(zt, str) else None)


def _offline(data: Mapping[str, Any]) -> bool:
    return data.get("minutes_offline") is not None


def _code(data: Mapping[str, Any], decision: Decision | None) -> str | None:
    outcome = data.get("outcome")
    if isinstance(outcome, str):
        return outcome
    return str(decision.code) if decision is not None else None


def _passage_items(event: StoredEvent, p: PeerPassage) -> Iterator[HistoryItem]:
    decision = event_decision(event)
    offline = _offline(event.data) or p.offline
    yield HistoryItem(
        p.at,
        _passage_kind(p),
        code=_code(event.data, decision),
        gate=p.gate,
        zone_from=p.zone_from,
        zone_to=p.zone_to,
        offline=offline,
        explanation=explanation_dict(decision.explanation) if decision else None,
        ref=event.id,
    )
    if decision is None:
        return
    if p.settled or decision.post_to_tab:
        kind = ItemKind.CHARGE_SETTLED if p.settled else ItemKind.CHARGE_POSTED
        for line in decision.charges:
            params = dict(line.params)
            yield HistoryItem(
                p.at,
                kind,
                code=str(line.code),
                gate=p.gate,
                zone_from=p.zone_from,
                zone_to=p.zone_to,
                offline=offline,
                amount_minor=line.amount_minor,
                currency=line.currency,
                explanation={"key": str(line.code), "params": params},
                ref=str(params.get("ref", event.id)),
                description=str(params["description"]) if "description" in params else None,
            )
    for line in decision.credits:
        yield HistoryItem(
            p.at,
            ItemKind.CREDIT,
            code=str(line.code),
            gate=p.gate,
            offline=offline,
            amount_minor=line.amount_minor,
            currency=line.currency,
            ref=event.id,
        )


def _event_items(event: StoredEvent, unreadable: list[str]) -> Iterator[HistoryItem]:
    where = f"{event.device}/{event.stream}/{event.seq}"
    if event.kind == PASSAGE:
        p = event_passage(event)
        if p is None:
            unreadable.append(f"{where}: {event.kind} without a readable passage")
            return
        yield from _passage_items(event, p)
    elif event.kind in (DENIED, ANNULLED):
        decision = event_decision(event)
        if event.kind == DENIED and decision is None:
            unreadable.append(f"{where}: {event.kind} without a readable decision")
        zone_from, zone_to = _gate_zones(event.data)
        yield HistoryItem(
            event.ts,
            ItemKind.DENIED if event.kind == DENIED else ItemKind.ANNULLED,
            code=(
                str(event.data["reason"])
                if event.kind == ANNULLED and "reason" in event.data
                else _code(event.data, decision)
            ),
            gate=event.device,
            zone_from=zone_from,
            zone_to=zone_to,
            offline=_offline(event.data),
            amount_minor=decision.due_minor if decision and decision.due_minor else None,
            currency=decision.currency if decision and decision.due_minor else None,
            explanation=explanation_dict(decision.explanation) if decision else None,
            ref=event.id,
        )


def _catalog_items(record: WristbandRecord, currency: str | None) -> Iterator[HistoryItem]:
    for key, posting in record.postings:
        yield HistoryItem(
            posting.ts,
            ItemKind.POSTING,
            code=str(ChargeCode.TAB),
            amount_minor=posting.amount_minor,
            currency=currency,
            ref=key,
            description=posting.description or None,
        )
    for key, payment in record.payments:
        yield HistoryItem(
            payment.ts,
            ItemKind.PAYMENT,
            amount_minor=payment.amount_minor,
            currency=currency,
            ref=key,
            description=payment.method or None,
        )
    for stop in record.timestops:
        yield HistoryItem(stop.at, ItemKind.TIMESTOP)


def _entitlements(record: WristbandRecord, site: Site | None) -> list[dict[str, Any]]:
    tz = site.tz if site is not None else UTC
    out = []
    for key, row in record.entitlements:
        used = usage_of(key, row, record.passages, tz)
        out.append(
            {
                "id": key,
                "tariff_id": row.tariff_id,
                "tariff_name": (
                    site.tariffs[row.tariff_id].name
                    if site is not None and row.tariff_id in site.tariffs
                    else None
                ),
                "concession": row.concession,
                "valid_from": row.valid_from,
                "valid_to": row.valid_to,
                "entries_used": used.entries_used,
                "first_used": used.first_used.isoformat() if used.first_used else None,
                "days_used": sorted(d.isoformat() for d in used.days_used),
            }
        )
    return out


def _totals(items: list[HistoryItem], record: WristbandRecord, currency: str | None) -> Totals:
    def total(kinds: tuple[ItemKind, ...], code: str | None = None, skip: str | None = None) -> int:
        return sum(
            i.amount_minor or 0
            for i in items
            if i.kind in kinds
            and (code is None or i.code == code)
            and (skip is None or i.code != skip)
        )

    tab = tab_of(record)
    gate_charges = (ItemKind.CHARGE_SETTLED, ItemKind.CHARGE_POSTED)
    return Totals(
        currency,
        charged_minor=total(gate_charges, skip=str(ChargeCode.TAB)),
        posted_minor=total((ItemKind.POSTING,)),
        paid_minor=total((ItemKind.PAYMENT,)),
        refunded_minor=total((ItemKind.CREDIT,), code=str(ChargeCode.DEPOSIT_REFUND)),
        settled_minor=total((ItemKind.CHARGE_SETTLED,)),
        balance_minor=tab.posted_minor - tab.paid_minor,
    )


def wristband_history(db: Db, uid: str) -> WristbandHistory:
    """Everything central knows about wristband ``uid``, in time order, with totals.

    Events that cannot be read are listed in ``unreadable`` rather than failing the view;
    invalid published rules only cost the entitlements' tariff names and the time zone.
    """
    try:
        site = site_at(db)
    except CatalogError as err:
        logger.warning("the published rules cannot be read: %s", err)
        site = None
    record = wristband_record(db, uid)
    unreadable: list[str] = []
    events = uid_events(db, uid, (PASSAGE, DENIED, ANNULLED))
    items: list[HistoryItem] = []
    seen: set[str] = set()
    for event in events:
        passage = event_passage(event)
        if passage is not None:
            if passage.id in seen:
                continue
            seen.add(passage.id)
        items.extend(_event_items(event, unreadable))
    currency = site.currency if site is not None else None
    if currency is None:  # no readable rules: the currency the gates decided in
        decisions = (event_decision(e) for e in events)
        currency = next((d.currency for d in decisions if d is not None), None)
    items.extend(_catalog_items(record, currency))
    items.sort(key=lambda i: (i.at, _ORDER[i.kind]))  # stable: a decision's lines in order
    wristband = record.wristband.model_dump() if record.wristband is not None else None
    return WristbandHistory(
        uid,
        wristband,
        _entitlements(record, site),
        items,
        _totals(items, record, currency),
        timezone=site.tz.key if site is not None else None,
        unreadable=unreadable,
    )
