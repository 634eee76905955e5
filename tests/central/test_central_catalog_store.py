"""The whole catalog in the central store: every entity, snapshots, compaction, rules."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.sqlite_store import SCHEMA_VERSION, SqliteStorage
from central.store import WristbandRow
from entrada.errors import ProtocolError, StoreError
from entrada.protocol import (
    EntitlementData,
    PaymentData,
    PostingData,
    RulesData,
    TimeStopData,
    WristbandData,
)

UID = "04A1B2C3D4E5F6"
ROWS = [
    ("wristband", UID, WristbandData(holder="Ann", deposit_minor=500, tab_limit_minor=10_000)),
    ("entitlement", "e-1", EntitlementData(uid=UID, tariff_id="day", valid_to="2030-01-31")),
    ("posting", "bar:1", PostingData(uid=UID, amount_minor=1250, description="cola", ts=10.0)),
    ("payment", "kiosk:1", PaymentData(uid=UID, amount_minor=1000, method="card", ts=11.0)),
    ("timestop", "kiosk:2", TimeStopData(uid=UID, at=12.5)),
    ("rules", "site", RulesData(document={"site": {"id": "pool"}})),
]


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStorage(tmp_path / "c.sqlite", synchronous="NORMAL")
    yield s
    s.close()


def wristbands(n: int, start: int = 1) -> list[tuple[str, str, WristbandData]]:
    return [("wristband", f"{i:08X}", WristbandData()) for i in range(start, start + n)]


# ------------------------------------------------------------------ apply


@pytest.mark.parametrize(("entity", "key", "data"), ROWS, ids=[r[0] for r in ROWS])
def test_every_entity_round_trips(store, entity, key, data):
    assert store.catalog_apply([(entity, key, data)], 1.0) == 1

    assert store.catalog_row(entity, key) == data
    (change,) = store.catalog_changes(0, 10)
    assert (change.version, change.entity, change.op, change.key) == (1, entity, "upsert", key)
    assert change.data == data
    assert store.catalog_apply([(entity, key, None)], 2.0) == 2
    assert store.catalog_row(entity, key) is None
    assert store.catalog_changes(1, 10)[0].op == "delete"


def test_unchanged_rows_and_missing_deletes_append_nothing(store):
    assert store.catalog_apply(ROWS, 1.0) == 6
    assert store.catalog_apply(ROWS, 2.0) == 6
    assert store.catalog_apply([("posting", "nope", None)], 3.0) == 6
    changed = PostingData(uid=UID, amount_minor=1300, description="cola", ts=10.0)
    assert store.catalog_apply([*ROWS[:2], ("posting", "bar:1", changed)], 4.0) == 7
    assert [c.version for c in store.catalog_changes(0, 100)] == list(range(1, 8))


def test_the_same_row_twice_in_one_call(store):
    a, b = WristbandData(holder="A"), WristbandData(holder="B")
    head = store.catalog_apply(
        [("wristband", UID, a), ("wristband", UID, b), ("wristband", UID, b)], 1
    )

    assert head == 2 and store.catalog_row("wristband", UID) == b


@pytest.mark.parametrize(
    "bad",
    [
        ("wristband", "not-hex", WristbandData()),
        ("entitlement", "e 1", EntitlementData(uid=UID, tariff_id="day")),
        ("posting", "p1", WristbandData()),  # another entity's data
        ("rules", "other", RulesData(document={})),  # rules live under "site"
        ("tariff", "t1", None),  # no such entity
        ("rules", "site", RulesData(document={"blob": "x" * 300_000})),  # too big for a page
    ],
)
def test_one_invalid_change_writes_nothing(store, bad):
    with pytest.raises(StoreError, match="nothing written"):
        store.catalog_apply([ROWS[0], bad], 1.0)

    assert store.catalog_head() == 0 and store.catalog_row("wristband", UID) is None


def test_rows_for_uid_in_version_order(store):
    store.catalog_apply(ROWS, 1.0)
    store.catalog_apply(
        [("posting", "bar:0", PostingData(uid="DEADBEEF", amount_minor=1, ts=1.0))], 2.0
    )
    store.catalog_apply([("entitlement", "e-1", EntitlementData(uid=UID, tariff_id="week"))], 3.0)

    rows = store.catalog_rows_for_uid(UID)
    assert [(e, k, v) for e, k, v, _ in rows] == [
        ("posting", "bar:1", 3),
        ("payment", "kiosk:1", 4),
        ("timestop", "kiosk:2", 5),
        ("entitlement", "e-1", 8),
    ]
    assert store.catalog_rows_for_uid("DEADBEEF")[0][3].amount_minor == 1
    assert store.catalog_rows_for_uid("00000000") == []


def test_uid_lookups_use_the_expression_index(store):
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM catalog_rows WHERE json_extract(data, '$.uid') = ?",
        (UID,),
    ).fetchall()
    assert "catalog_rows_uid" in str(plan)


def test_wristband_api_sees_the_new_fields(store):
    store.catalog_apply(ROWS[:1], 1.0)
    assert store.wristband(UID) == WristbandRow(UID, "active", "Ann", None, "secure", 500, 10_000)
    store.catalog_upsert_wristbands([WristbandRow(UID, assurance="uid_only")], 2.0)
    assert store.catalog_row("wristband", UID) == WristbandData(assurance="uid_only")


# ---------------------------------------------------------------- rules history


def test_rules_document_at_a_version(store):
    store.catalog_apply(wristbands(2), 1.0)  # versions 1, 2
    store.catalog_apply([("rules", "site", RulesData(document={"n": 1}))], 2.0)  # 3
    store.catalog_apply(wristbands(2, 10), 3.0)  # 4, 5
    store.catalog_apply([("rules", "site", RulesData(document={"n": 2}))], 4.0)  # 6
    store.catalog_apply([("rules", "site", RulesData(document={"n": 2}))], 5.0)  # unchanged

    assert store.rules_document(2) is None
    assert store.rules_document(3) == (3, {"n": 1})
    assert store.rules_document(5) == (3, {"n": 1})
    assert store.rules_document() == (6, {"n": 2})
    store.compact_catalog(1)  # the history outlives the log
    assert store.rules_document(4) == (3, {"n": 1})
    store.catalog_apply([("rules", "site", None)], 6.0)  # 7: withdrawn
    assert store.rules_document() is None and store.rules_document(6) == (6, {"n": 2})


# ----------------------------------------------------------------- snapshots


def page_through(store, limit, between=None):
    rows, after, pages = [], None, 0
    while True:
        page, after = store.catalog_snapshot(after, limit)
        rows += page
        pages += 1
        if between is not None:
            between(pages)
        if after is None:
            return rows, pages


def test_snapshot_covers_every_row_once_in_order(store):
    store.catalog_apply(ROWS + wristbands(20), 1.0)
    store.catalog_apply([("wristband", "00000003", None)], 2.0)

    rows, pages = page_through(store, 4)

    keys = [(c.entity, c.key) for c in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == 25
    assert pages == 7 and all(c.op == "upsert" for c in rows)
    assert ("wristband", "00000003") not in keys
    by_key = {(c.entity, c.key): c for c in rows}
    assert (
        by_key[("posting", "bar:1")].version == 3
        and by_key[("posting", "bar:1")].data == ROWS[2][2]
    )


def test_snapshot_of_an_empty_catalog_and_exact_pages(store):
    assert store.catalog_snapshot(None, 10) == ([], None)
    store.catalog_apply(wristbands(4), 1.0)
    _, after = store.catalog_snapshot(None, 2)
    assert after == "wristband/00000002"
    second, after = store.catalog_snapshot(after, 2)
    assert [c.key for c in second] == ["00000003", "00000004"] and after is None


def test_snapshot_then_log_from_as_of_is_the_current_state(store):
    store.catalog_apply(ROWS + wristbands(30), 1.0)
    as_of = store.catalog_head()

    def meanwhile(page):
        if page == 2:  # rows before, at and after the cursor change
            store.catalog_apply(
                [
                    ("wristband", "00000001", None),
                    ("wristband", "00000002", WristbandData(status="lost")),
                    ("wristband", "0000001E", WristbandData(holder="late")),
                    ("wristband", "000000FF", WristbandData()),
                    ("entitlement", "e-0", EntitlementData(uid=UID, tariff_id="day")),
                    ("posting", "bar:1", None),
                ],
                2.0,
            )

    rows, _ = page_through(store, 5, meanwhile)
    device = {(c.entity, c.key): c.data for c in rows}
    for change in store.catalog_changes(as_of, 1000):
        if change.op == "delete":
            device.pop((change.entity, change.key), None)
        else:
            device[(change.entity, change.key)] = change.data

    current = {(c.entity, c.key): c.data for c in page_through(store, 1000)[0]}
    assert device == current and len(current) == 36


@pytest.mark.parametrize(
    "cursor", ["", "wristband", "tariff/x", "wristband/", "wristband/a/b", "x" * 400, "Wristband/1"]
)
def test_a_cursor_we_did_not_make_is_a_protocol_error(store, cursor):
    with pytest.raises(ProtocolError, match=r"reject\.shape"):
        store.catalog_snapshot(cursor, 10)


# ----------------------------------------------------------------- compaction


def test_compaction_keeps_the_newest_and_records_the_floor(store, tmp_path):
    store.catalog_apply(wristbands(10), 1.0)
    assert store.catalog_floor() == 0

    assert store.compact_catalog(keep=4) == 6
    assert store.compact_catalog(keep=4) == 0
    assert store.catalog_floor() == 6 and store.catalog_head() == 10
    assert [c.version for c in store.catalog_changes(0, 100)] == [7, 8, 9, 10]
    store.catalog_apply(wristbands(1, 100), 2.0)
    assert store.catalog_head() == 11
    with SqliteStorage(tmp_path / "c.sqlite", readonly=True) as again:
        assert (again.catalog_floor(), again.catalog_head()) == (6, 11)


def test_compaction_in_steps_and_of_everything_but_one(store):
    store.catalog_apply(wristbands(10), 1.0)
    assert store.compact_catalog(keep=1, max_rows=4) == 4
    assert store.catalog_floor() == 4
    assert store.compact_catalog(keep=1) == 5
    assert (store.catalog_floor(), store.catalog_head()) == (9, 10)
    with pytest.raises(StoreError):
        store.compact_catalog(keep=0)


# ----------------------------------------------------------------- migration


V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE wristbands (
    uid TEXT PRIMARY KEY, status TEXT NOT NULL, holder TEXT, valid_until REAL,
    version INTEGER NOT NULL
);
CREATE TABLE catalog_log (
    version INTEGER PRIMARY KEY, entity TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    data TEXT, ts REAL NOT NULL
);
INSERT INTO wristbands VALUES ('DEADBEEF', 'active', 'Ann', NULL, 3);
INSERT INTO wristbands VALUES ('CAFEBABE', 'blocked', NULL, 1900000000.0, 2);
INSERT INTO catalog_log VALUES (1, 'wristband', 'upsert', 'DEADBEEF',
    '{"status":"active","holder":null,"valid_until":null}', 1.0);
INSERT INTO catalog_log VALUES (2, 'wristband', 'upsert', 'CAFEBABE',
    '{"status":"blocked","holder":null,"valid_until":1900000000.0}', 1.0);
INSERT INTO catalog_log VALUES (3, 'wristband', 'upsert', 'DEADBEEF',
    '{"status":"active","holder":"Ann","valid_until":null}', 2.0);
"""


def test_a_schema_1_store_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(V1_SCHEMA)
    con.close()
    with pytest.raises(StoreError, match="start central once"):
        SqliteStorage(path, readonly=True)

    with SqliteStorage(path) as store:
        assert store.wristband("DEADBEEF") == WristbandRow("DEADBEEF", "active", "Ann")
        assert store.catalog_changes(0, 10)[2].data == WristbandData(holder="Ann")
        assert store.catalog_snapshot(None, 10)[0][0].version == 2  # CAFEBABE's version
        # equal to the migrated row: nothing appended
        assert store.catalog_upsert_wristbands([("CAFEBABE", "blocked", None, 1.9e9)], 3) == 3
        assert store.catalog_apply(ROWS[1:2], 3.0) == 4

    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "wristbands" not in tables and {"catalog_rows", "rules_versions"} <= tables
    finally:
        con.close()
    with SqliteStorage(path, readonly=True) as ro:
        assert ro.catalog_head() == 4
