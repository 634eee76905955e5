"""A central store filled by the real rules engine: rules, catalog rows and gate events.

:class:`Rig` publishes a small site's rules, puts wristbands and their entitlements in the
catalog, and plays taps at gates: each tap is decided by ``assemble`` + ``decide`` from
what the gate knows (by default everything central has; ``blind_to`` hides passages the
gate did not hear) and stored as the ``gate.passage`` or ``gate.denied`` event a gate
records, with the logged input and decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.history import site_at, wristband_record
from central.replay import ensure_schema
from central.sqlite_store import SqliteStorage
from controller.rules.assemble import WristbandRecord, assemble, recorded_passage
from controller.rules.decision import Decision
from controller.rules.model import Direction, Gate
from controller.rules.serial import dump_decision, dump_logged_input
from entrada.protocol import (
    EntitlementData,
    Event,
    PaymentData,
    PostingData,
    RulesData,
    TimeStopData,
    WristbandData,
)

#: 2027-06-01 10:00 UTC (12:00 in Warsaw), a Tuesday.
T0 = datetime(2027, 6, 1, 10, 0, tzinfo=UTC).timestamp()
UID = "04A1B2C3"
OTHER = "04D5E6F7"

RULES: dict[str, Any] = {
    "site": {"id": "fala", "tz": "Europe/Warsaw", "currency": "EUR"},
    "zones": [{"id": "facility", "capacity": 100}, {"id": "sauna", "parent": "facility"}],
    "tariffs": [
        {"id": "single", "name": "Single entry", "zones": ["facility"], "entries": 1},
        {"id": "pass3", "name": "3 entries", "zones": ["facility"], "entries": 3},
        {
            "id": "strict",
            "name": "Online only",
            "zones": ["facility"],
            "offline": {"after_minutes": 0, "mode": "deny"},
        },
        {
            "id": "spa",
            "name": "Spa",
            "zones": ["facility", "sauna"],
            "stay": {
                "sauna": {"rate": {"prices": {"adult": 1000}}, "interval_minutes": 30},
            },
        },
    ],
}

GATES = {
    "entrance": Gate("entrance", None, "facility", Direction.IN),
    "exit": Gate("exit", "facility", None, Direction.OUT, collects_media=True),
    "sauna-in": Gate("sauna-in", "facility", "sauna", Direction.IN),
    "sauna-out": Gate("sauna-out", "sauna", "facility", Direction.OUT),
}


class Rig:
    """A central store with a site's rules, filled tap by tap."""

    def __init__(self, path: Path, rules: Mapping[str, Any] = RULES) -> None:
        self.path = path
        self.store = SqliteStorage(path)
        ensure_schema(self.store._conn)
        self.rules_version = self.catalog([("rules", "site", RulesData(document=dict(rules)))])

    def close(self) -> None:
        self.store.close()

    def catalog(self, changes: list[tuple[str, str, Any]], at: float = T0 - 3600) -> int:
        return self.store.catalog_apply(changes, at)

    def wristband(self, uid: str = UID, **fields: Any) -> int:
        return self.catalog([("wristband", uid, WristbandData(**fields))])

    def entitlement(self, key: str, tariff_id: str, uid: str = UID, **fields: Any) -> int:
        return self.catalog(
            [("entitlement", key, EntitlementData(uid=uid, tariff_id=tariff_id, **fields))]
        )

    def posting(self, key: str, amount: int, at: float, uid: str = UID, text: str = "") -> int:
        data = PostingData(uid=uid, amount_minor=amount, description=text, ts=at)
        return self.catalog([("posting", key, data)], at)

    def payment(self, key: str, amount: int, at: float, uid: str = UID) -> int:
        data = PaymentData(uid=uid, amount_minor=amount, method="card", ts=at)
        return self.catalog([("payment", key, data)], at)

    def timestop(self, key: str, at: float, uid: str = UID) -> int:
        return self.catalog([("timestop", key, TimeStopData(uid=uid, at=at))], at)

    def knows(self, uid: str, at: float, blind_to: Iterable[str] = ()) -> WristbandRecord:
        """What a gate knows of ``uid`` at ``at``: central's record less unheard passages."""
        record = wristband_record(self.store, uid, before=at)
        hidden = set(blind_to)
        passages = [p for p in record.passages if p.id not in hidden]
        return WristbandRecord(
            record.uid,
            record.wristband,
            record.entitlements,
            passages,
            record.postings,
            record.payments,
            record.timestops,
        )

    def tap(
        self,
        gate: str,
        at: float,
        uid: str = UID,
        *,
        offline: float | None = None,
        blind_to: Iterable[str] = (),
        record: WristbandRecord | None = None,
        occupancy: Mapping[str, int] | None = None,
        received_at: float | None = None,
        catalog_version: int | None = None,
    ) -> tuple[Decision, Event]:
        """Decide a tap of ``uid`` at ``gate`` and store the event the gate records."""
        model = GATES[gate]
        version = self.store.catalog_head() if catalog_version is None else catalog_version
        site = site_at(self.store, version)
        assert site is not None
        known = record if record is not None else self.knows(uid, at, blind_to)
        inputs = assemble(known, site, model, at, occupancy=occupancy, minutes_offline=offline)
        decision = inputs.decide()
        event_id = uuid.uuid4().hex
        data: dict[str, Any] = {
            "uid": uid,
            "direction": str(model.direction),
            "catalog_version": version,
            "minutes_offline": offline,
            "outcome": str(decision.code),
            "rule_version": decision.rule_version,
            "decision": dump_decision(decision),
            "input": dump_logged_input(inputs),
        }
        kind = "gate.denied"
        if decision.allowed:
            passage = recorded_passage(decision, uid, model, gate, at, event_id)
            data["passage"] = passage.model_dump()
            kind = "gate.passage"
        return decision, self.event(gate, kind, at, data, event_id, received_at)

    def event(
        self,
        device: str,
        kind: str,
        at: float,
        data: dict[str, Any],
        event_id: str | None = None,
        received_at: float | None = None,
    ) -> Event:
        (last,) = self.store._conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE device = ? AND stream = 'events'",
            (device,),
        ).fetchone()
        seq = last + 1
        event = Event(
            id=event_id or uuid.uuid4().hex, stream="events", seq=seq, kind=kind, ts=at, data=data
        )
        self.store.store_events(device, [event], at + 1 if received_at is None else received_at)
        return event
