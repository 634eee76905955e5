"""The device's copy of the catalog (controller.catalog_copy) in a real store file: every
entity read back per wristband, pages applied atomically, snapshots staged and swapped."""

import sqlite3

import pytest

from controller.store import DeviceStore
from entrada.errors import StoreError
from entrada.protocol import (
    CATALOG_CHANGE,
    CatalogSnapshot,
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    RulesData,
    SnapshotCursor,
    TimeStopData,
    WristbandChange,
    WristbandData,
)

UID = "04A1B2C3D4E5F6"
OTHER = "04FFFFFFFFFFFF"
RULES = {"site": {"id": "fala", "tz": "Europe/Warsaw", "currency": "PLN"}, "zones": []}


@pytest.fixture
def store(tmp_path):
    s = DeviceStore(tmp_path / "device.db")
    yield s
    s.close()


def change(version, entity, key, data=None):
    """An upsert of ``data`` (a delete when None), validated as central sends it."""
    op = "delete" if data is None else "upsert"
    body = {"version": version, "entity": entity, "op": op, "key": key}
    if data is not None:
        body["data"] = data.model_dump()
    return CATALOG_CHANGE.validate_python(body)


def wristband(version, uid, status="active"):
    return change(version, "wristband", uid, WristbandData(status=status))


#: (entity, key, data, the record's field, what the field holds)
ENTITIES = [
    ("wristband", UID, WristbandData(holder="Ala", deposit_minor=500), "wristband", None),
    ("entitlement", "e1", EntitlementData(uid=UID, tariff_id="day"), "entitlements", "pair"),
    ("posting", "bar-1", PostingData(uid=UID, amount_minor=1200, ts=1.0), "postings", "pair"),
    ("payment", "pay-1", PaymentData(uid=UID, amount_minor=700, ts=2.0), "payments", "pair"),
    ("timestop", "kiosk-1", TimeStopData(uid=UID, at=3.0), "timestops", "list"),
]


def held(shape, key, data):
    return data if shape is None else [(key, data)] if shape == "pair" else [data]


def empty(shape):
    return None if shape is None else []


@pytest.mark.parametrize(("entity", "key", "data", "field", "shape"), ENTITIES)
def test_every_entity_is_read_back_with_its_wristband(store, entity, key, data, field, shape):
    store.apply_catalog([change(1, entity, key, data)], to_version=1)

    assert getattr(store.catalog.record(UID), field) == held(shape, key, data)
    assert getattr(store.catalog.record(OTHER), field) == empty(shape)


@pytest.mark.parametrize(("entity", "key", "data", "field", "shape"), ENTITIES)
def test_a_delete_removes_the_entity(store, entity, key, data, field, shape):
    store.apply_catalog([change(1, entity, key, data), change(2, entity, key)], to_version=2)

    assert getattr(store.catalog.record(UID), field) == empty(shape)
    assert store.catalog.count() == 0


def test_the_rules_are_read_back_as_published_and_changing_them_is_reported(store):
    changed = store.apply_catalog([change(1, "rules", "site", RulesData(document=RULES))], 1)
    unchanged = store.apply_catalog([wristband(2, UID)], 2)

    assert (changed, unchanged) == (True, False)
    assert store.catalog.rules() == RULES


def test_a_record_gathers_every_row_of_its_wristband_and_the_given_passages(store):
    store.apply_catalog([change(i + 1, *e[:3]) for i, e in enumerate(ENTITIES)], 5)
    walked = PeerPassage(
        id="0" * 32, uid=UID, at=4.0, zone_from=None, zone_to="pool", direction="in", gate="g-1"
    )

    rec = store.catalog.record(UID, passages=[walked])

    rows = {f: len(getattr(rec, f)) for f in ("entitlements", "postings", "payments", "timestops")}
    assert rows == dict.fromkeys(rows, 1)
    assert (rec.wristband.holder, tuple(rec.passages)) == ("Ala", (walked,))


def test_a_page_that_fails_midway_leaves_nothing_and_the_version_unchanged(store):
    store.apply_catalog([wristband(1, UID)], to_version=1)
    # a change the store cannot take (central would never send it: it has no key)
    keyless = WristbandChange.model_construct(
        version=4, entity="wristband", op="upsert", key=None, data=WristbandData()
    )
    page = [
        wristband(2, OTHER),
        change(3, "wristband", UID),  # a delete: a run of its own, applied before the failure
        keyless,
    ]

    with pytest.raises(sqlite3.IntegrityError):
        store.apply_catalog(page, to_version=4)

    assert store.catalog_version == 1
    assert store.wristband(UID) is not None
    assert store.wristband(OTHER) is None


# ------------------------------------------------------------------------- snapshots


def snapshot(as_of, after, next_, *uids):
    rows = [wristband(as_of, uid) for uid in uids]
    return CatalogSnapshot(as_of=as_of, head=as_of, after=after, next=next_, rows=rows)


A, B, C = "04AAAAAAAAAAAA", "04BBBBBBBBBBBB", "04CCCCCCCCCCCC"


@pytest.fixture
def behind(store):
    """A store at v3 holding only OTHER, taking a snapshot as of v9 (first page staged)."""
    store.apply_catalog([wristband(3, OTHER)], to_version=3)
    assert store.apply_snapshot_page(snapshot(9, None, f"wristband/{A}", A)) is False
    return store


def test_staged_pages_leave_the_catalog_alone_until_the_last_one_swaps_it(behind):
    staged = (behind.catalog_version, behind.wristband(OTHER), behind.wristband(A))

    done = behind.apply_snapshot_page(snapshot(9, f"wristband/{A}", None, B))

    assert staged == (3, WristbandData(), None)
    assert done is True
    assert behind.catalog_version == 9
    assert [behind.wristband(u) is not None for u in (A, B, OTHER)] == [True, True, False]
    assert behind.snapshot_cursor() is None


def test_the_cursor_says_where_the_snapshot_stands(behind):
    assert behind.snapshot_cursor() == SnapshotCursor(as_of=9, after=f"wristband/{A}")


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(snapshot(9, "wristband/elsewhere", None, B), id="other-place"),
        pytest.param(snapshot(8, f"wristband/{A}", None, B), id="other-snapshot"),
    ],
)
def test_a_page_that_does_not_continue_the_snapshot_is_refused_and_changes_nothing(behind, page):
    with pytest.raises(StoreError):
        behind.apply_snapshot_page(page)

    assert behind.snapshot_cursor() == SnapshotCursor(as_of=9, after=f"wristband/{A}")
    assert behind.catalog_version == 3 and behind.wristband(B) is None
    assert behind.apply_snapshot_page(snapshot(9, f"wristband/{A}", None, C)) is True
    assert [behind.wristband(u) is not None for u in (A, B, C)] == [True, False, True]


def test_a_continuation_without_a_snapshot_under_way_is_refused(store):
    with pytest.raises(StoreError):
        store.apply_snapshot_page(snapshot(9, f"wristband/{A}", None, B))

    assert store.snapshot_cursor() is None and store.catalog.count() == 0


def test_a_new_snapshot_starts_staging_afresh(behind):
    done = behind.apply_snapshot_page(snapshot(12, None, None, C))

    assert done is True and behind.catalog_version == 12
    assert [behind.wristband(u) is not None for u in (A, C, OTHER)] == [False, True, False]


def test_abandoning_a_snapshot_forgets_what_was_staged(behind):
    behind.abandon_snapshot()
    behind.apply_snapshot_page(snapshot(12, None, None, C))

    assert behind.snapshot_cursor() is None
    assert [behind.wristband(u) is not None for u in (A, C)] == [False, True]


def test_a_snapshot_under_way_survives_closing_the_store(behind, tmp_path):
    behind.close()
    reopened = DeviceStore(tmp_path / "device.db")
    try:
        cursor = reopened.snapshot_cursor()
        done = reopened.apply_snapshot_page(snapshot(9, f"wristband/{A}", None, B))
        present = [reopened.wristband(u) is not None for u in (A, B, OTHER)]
    finally:
        reopened.close()

    assert cursor == SnapshotCursor(as_of=9, after=f"wristband/{A}")
    assert done is True and present == [True, True, False]


def test_a_swapped_catalog_is_still_found_by_wristband(behind):
    behind.apply_snapshot_page(
        CatalogSnapshot(
            as_of=9,
            head=9,
            after=f"wristband/{A}",
            next=None,
            rows=[change(9, "entitlement", "e1", EntitlementData(uid=A, tariff_id="day"))],
        )
    )

    plan = behind._conn.execute(
        "EXPLAIN QUERY PLAN SELECT entity, key, data FROM catalog WHERE uid = ?", (A,)
    ).fetchall()
    assert behind.catalog.record(A).entitlements[0][0] == "e1"
    assert "catalog_uid" in " ".join(str(row) for row in plan)


# ------------------------------------------------------------------------- migration


def schema_1_file(path):
    """A store as the first release left it: a wristbands table, meta schema 1."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE wristbands (uid TEXT PRIMARY KEY, status TEXT NOT NULL, holder TEXT,
            valid_until REAL) WITHOUT ROWID;
        CREATE TABLE streams (name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE outbox (stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
            kind TEXT NOT NULL, ts REAL NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (stream, seq)) WITHOUT ROWID;
        INSERT INTO meta VALUES ('incarnation', 'cafe0001'), ('schema', '1'),
            ('catalog_version', '41');
        INSERT INTO wristbands VALUES ('04A1B2C3D4E5F6', 'active', NULL, NULL);
        INSERT INTO streams VALUES ('gate.cafe0001', 2);
        INSERT INTO outbox VALUES ('gate.cafe0001', 1, 'a1', 'gate.passage', 1.0, '{}'),
            ('gate.cafe0001', 2, 'a2', 'gate.denied', 2.0, '{}');
        """
    )
    db.commit()
    db.close()


def test_a_schema_1_file_keeps_its_outbox_and_fetches_the_catalog_again(tmp_path):
    path = tmp_path / "device.db"
    schema_1_file(path)

    store = DeviceStore(path)
    try:
        pending = [(r.seq, r.kind) for r in store.outbox_after("gate.cafe0001", 0, 10)]
        with store.transaction() as tx:
            next_seq = tx.emit(store.stream_name("gate"), "gate.passage", 3.0, {}).seq
        state = (store.rebuilt_reason, store.incarnation, store.catalog_version)
    finally:
        store.close()
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()

    assert pending == [(1, "gate.passage"), (2, "gate.denied")]
    assert next_seq == 3
    assert state == (None, "cafe0001", 0)
    assert "wristbands" not in tables and {"catalog", "passages"} <= tables
