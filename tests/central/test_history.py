"""A wristband's history at central: the record for replays, and the dispute view."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from history_rig import OTHER, T0, UID, Rig

from central.history import ItemKind, ensure_schema, wristband_history, wristband_record

MIN = 60.0


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "central.sqlite")
    yield r
    r.close()


def spa_visit(rig: Rig) -> dict[str, str]:
    """Entrance, 60 min in the sauna (20.00 posted), a lemonade (4.50), a refused exit
    (owing), a payment of everything, the exit with the 5.00 deposit paid back."""
    rig.wristband(UID, holder="Ada", deposit_minor=500)
    rig.entitlement("ent-spa", "spa")
    ids = {}
    _, ids["entry"] = rig.tap("entrance", T0)
    _, ids["sauna_in"] = rig.tap("sauna-in", T0 + 10 * MIN)
    _, ids["sauna_out"] = rig.tap("sauna-out", T0 + 70 * MIN)
    rig.posting("bar-1", 450, T0 + 80 * MIN, text="Lemonade")
    _, ids["refused"] = rig.tap("exit", T0 + 85 * MIN)
    rig.payment("pay-1", 2450, T0 + 90 * MIN)
    _, ids["exit"] = rig.tap("exit", T0 + 100 * MIN)
    return {k: v.id for k, v in ids.items()}


def test_an_unknown_wristband_has_no_history(rig: Rig) -> None:
    found = wristband_history(rig.store, OTHER)

    assert not found.known
    assert found.items == [] and found.wristband is None


def test_a_visit_in_time_order_with_charges_payments_and_totals(rig: Rig) -> None:
    spa_visit(rig)

    found = wristband_history(rig.store, UID)

    rows = [(i.kind, i.code, i.amount_minor) for i in found.items]
    assert rows == [
        (ItemKind.ENTRY, "granted", None),
        (ItemKind.ZONE_MOVE, "granted", None),
        (ItemKind.ZONE_MOVE, "granted", None),
        (ItemKind.CHARGE_POSTED, "stay", 2000),
        (ItemKind.POSTING, "tab", 450),
        (ItemKind.DENIED, "denied.owing", 2450),
        (ItemKind.PAYMENT, None, 2450),
        (ItemKind.EXIT, "granted", None),
        (ItemKind.CHARGE_SETTLED, "tab", 450),
        (ItemKind.CHARGE_SETTLED, "tab", 2000),
        (ItemKind.CREDIT, "deposit.refund", 500),
    ]
    assert [i.at for i in found.items] == sorted(i.at for i in found.items)
    assert found.totals.currency == "EUR"
    assert dataclasses.asdict(found.totals) == {
        "currency": "EUR",
        "charged_minor": 2000,
        "posted_minor": 450,
        "paid_minor": 2450,
        "refunded_minor": 500,
        "settled_minor": 2450,
        "balance_minor": 0,
    }
    assert found.timezone == "Europe/Warsaw"
    assert found.wristband is not None and found.wristband["holder"] == "Ada"


def test_items_say_where_who_and_why(rig: Rig) -> None:
    ids = spa_visit(rig)

    items = wristband_history(rig.store, UID).items

    sauna_out = items[2]
    assert (sauna_out.gate, sauna_out.zone_from, sauna_out.zone_to) == (
        "sauna-out",
        "sauna",
        "facility",
    )
    assert sauna_out.ref == ids["sauna_out"] and not sauna_out.offline
    denied = next(i for i in items if i.kind is ItemKind.DENIED)
    assert denied.explanation == {
        "key": "denied.owing",
        "params": {"currency": "EUR", "due": "24.50", "due_minor": 2450},
    }
    assert (denied.zone_from, denied.zone_to, denied.currency) == ("facility", None, "EUR")
    posting = next(i for i in items if i.kind is ItemKind.POSTING)
    assert (posting.ref, posting.description, posting.currency) == ("bar-1", "Lemonade", "EUR")


def test_the_balance_is_the_open_tab_of_the_current_visit(rig: Rig) -> None:
    rig.wristband(UID)
    rig.entitlement("ent-spa", "spa")
    rig.tap("entrance", T0)
    rig.posting("bar-1", 450, T0 + MIN)
    rig.payment("pay-1", 100, T0 + 2 * MIN)

    totals = wristband_history(rig.store, UID).totals

    assert (totals.posted_minor, totals.paid_minor, totals.balance_minor) == (450, 100, 350)


def test_entitlements_count_the_entries_gates_recorded(rig: Rig) -> None:
    rig.wristband(UID)
    rig.entitlement("ent-3", "pass3", entries_used=1)
    rig.tap("entrance", T0)

    (ent,) = wristband_history(rig.store, UID).entitlements

    assert ent["entries_used"] == 2
    assert ent["tariff_name"] == "3 entries"
    assert ent["days_used"] == ["2027-06-01"]


def test_offline_passages_and_annulled_grants_are_marked(rig: Rig) -> None:
    rig.wristband(UID)
    rig.entitlement("ent-3", "pass3")
    rig.tap("entrance", T0, offline=12.5)
    rig.event("entrance", "gate.annulled", T0 + MIN, {"uid": UID, "reason": "timeout"})

    items = wristband_history(rig.store, UID).items

    assert [(i.kind, i.code, i.offline) for i in items] == [
        (ItemKind.ENTRY, "granted.offline", True),
        (ItemKind.ANNULLED, "timeout", False),
    ]


def test_unreadable_events_are_listed_not_fatal(rig: Rig) -> None:
    rig.wristband(UID)
    rig.event("entrance", "gate.passage", T0, {"uid": UID, "passage": {"id": "nope"}})
    rig.event("entrance", "gate.denied", T0, {"uid": UID, "decision": {"allowed": "?"}})

    found = wristband_history(rig.store, UID)

    assert len(found.unreadable) == 2
    assert [i.kind for i in found.items] == [ItemKind.DENIED]


def test_the_record_holds_catalog_rows_and_passages_once(rig: Rig) -> None:
    ids = spa_visit(rig)

    record = wristband_record(rig.store, UID)

    assert record.wristband is not None and record.wristband.deposit_minor == 500
    assert [k for k, _ in record.entitlements] == ["ent-spa"]
    assert [p.id for p in record.passages] == [
        ids[k] for k in ("entry", "sauna_in", "sauna_out", "exit")
    ]
    assert [k for k, _ in record.postings] == ["bar-1"]
    assert [k for k, _ in record.payments] == ["pay-1"]


def test_the_record_before_an_instant_and_without_an_event(rig: Rig) -> None:
    ids = spa_visit(rig)

    record = wristband_record(rig.store, UID, before=T0 + 85 * MIN, exclude_event=ids["entry"])

    assert [p.id for p in record.passages] == [ids["sauna_in"], ids["sauna_out"]]
    assert [k for k, _ in record.postings] == ["bar-1"]
    assert record.payments == []


def test_a_bare_connection_reads_the_same(rig: Rig) -> None:
    spa_visit(rig)
    conn = sqlite3.connect(rig.path)
    try:
        found = wristband_history(conn, UID)
    finally:
        conn.close()

    assert found == wristband_history(rig.store, UID)


def test_events_are_found_through_the_uid_index(rig: Rig) -> None:
    conn = rig.store._conn
    ensure_schema(conn)  # a second time: nothing changes

    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE json_extract(data, '$.uid') = ?", (UID,)
    ).fetchall()

    assert any("events_uid" in row[-1] for row in plan)


def test_the_view_survives_rules_that_cannot_be_read(rig: Rig) -> None:
    rig.wristband(UID)
    rig.entitlement("ent-3", "pass3")
    rig.tap("entrance", T0)
    rig.store._conn.execute("UPDATE rules_versions SET document = '{\"zones\": []}'")

    found = wristband_history(rig.store, UID)

    assert found.timezone is None
    assert found.totals.currency == "EUR"  # from the decisions
    assert [i.kind for i in found.items] == [ItemKind.ENTRY]
