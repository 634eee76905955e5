"""The SQLite store: idempotent events, watermarks, quarantine, registry, catalog log."""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.sqlite_store import SqliteStorage
from central.store import DeviceBatch, QuarantineRecord, WristbandRow, open_storage
from entrada.errors import StoreError
from entrada.protocol import Event, Status, Versions


def ev(stream: str, seq: int, kind: str = "gate.grant") -> Event:
    return Event(
        id=uuid.uuid4().hex,
        stream=stream,
        seq=seq,
        kind=kind,
        ts=1.0,
        data={"uid": "DEADBEEF", "n": seq},
    )


def qrec(stream: str | None, seq: int | None, device: str = "g1") -> QuarantineRecord:
    return QuarantineRecord(
        device, f"entrada/t/device/{device}/events", b"{}", "reject.shape", "bad", stream, seq
    )


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStorage(tmp_path / "c.sqlite")
    yield s
    s.close()


# ------------------------------------------------------------------ events


def test_insert_is_idempotent(store):
    batch = [ev("gate", 1), ev("gate", 2)]

    first = store.store_events("g1", batch, now=10.0)
    again = store.store_events("g1", batch, now=11.0)

    assert first == (2, 0, {"gate": 2})
    assert again == (0, 2, {})
    assert store.count_events() == 2
    assert store.watermarks("g1") == {"gate": 2}


def test_duplicate_inside_one_batch_counts_once(store):
    assert store.store_events("g1", [ev("a", 1), ev("a", 1)], now=1.0) == (1, 1, {"a": 1})


def test_gap_holds_the_watermark_until_filled(store):
    assert store.store_events(
        "g1", [ev("a", 1), ev("a", 2), ev("a", 4)], 1.0
    ).watermarks_changed == {"a": 2}
    assert store.store_events("g1", [ev("a", 5)], 2.0).watermarks_changed == {}
    assert store.watermarks("g1") == {"a": 2}

    assert store.store_events("g1", [ev("a", 3)], 3.0).watermarks_changed == {"a": 5}


def test_out_of_order_beyond_a_chunk(store):
    """Filling a gap walks over many earlier out-of-order rows (more than one read chunk)."""
    store.store_events("g1", [ev("a", s) for s in range(2, 3001)], 1.0)
    assert store.watermarks("g1") == {"a": 0}

    assert store.store_events("g1", [ev("a", 1)], 2.0).watermarks_changed == {"a": 3000}


def test_streams_and_devices_are_independent(store):
    store.store_batches(
        [DeviceBatch("g1", [ev("a", 1), ev("b", 2)]), DeviceBatch("g2", [ev("a", 1), ev("a", 2)])],
        1.0,
    )
    assert store.watermarks("g1") == {"a": 1, "b": 0}
    assert store.watermarks("g2") == {"a": 2}
    assert store.watermarks("nobody") == {}


def test_many_devices_commit_together_or_not_at_all(store):
    broken = DeviceBatch(None, [ev("a", 1)])  # type: ignore[arg-type]  # NOT NULL violated
    with pytest.raises(StoreError):
        store.store_batches([DeviceBatch("g1", [ev("a", 1)]), broken], 1.0)
    assert store.count_events() == 0
    assert store.watermarks("g1") == {}


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(1, 41)), st.lists(st.integers(1, 10), min_size=1, max_size=12))
def test_watermark_is_the_contiguous_prefix_in_any_order(order, cuts):
    """Whatever the arrival order and batching, the watermark is always the highest seq
    with everything below it stored, and ends at the top."""
    with tempfile.TemporaryDirectory() as tmp:
        s = SqliteStorage(Path(tmp) / "c.sqlite", synchronous="NORMAL")
        try:
            seen: set[int] = set()
            i, k = 0, 0
            while i < len(order):
                chunk = order[i : i + cuts[k % len(cuts)]]
                i, k = i + len(chunk), k + 1
                s.store_events("g1", [ev("a", n) for n in chunk], 1.0)
                seen.update(chunk)
                prefix = 0
                while prefix + 1 in seen:
                    prefix += 1
                assert s.watermarks("g1") == {"a": prefix}
            assert s.watermarks("g1") == {"a": 40}
            assert s.count_events() == 40
        finally:
            s.close()


# -------------------------------------------------------------- quarantine


def test_quarantined_event_counts_for_the_watermark(store):
    res = store.store_events("g1", [ev("a", 1), ev("a", 3)], 1.0, quarantined=[qrec("a", 2)])

    assert res == (2, 0, {"a": 3})
    assert store.count_events() == 2
    assert store.count_quarantined("g1") == 1


def test_quarantine_alone_advances_and_is_kept_once(store):
    store.store_events("g1", [ev("a", 1), ev("a", 3)], 1.0)
    store.quarantine([qrec("a", 2)], 2.0)
    store.quarantine([qrec("a", 2)], 3.0)  # the device re-sent the poison event

    assert store.watermarks("g1") == {"a": 3}
    assert store.count_quarantined() == 1


def test_quarantine_without_identity_does_not_move_anything(store):
    store.quarantine([qrec(None, None), qrec(None, None)], 1.0)

    assert store.count_quarantined() == 1  # the same payload twice is kept once
    assert store.watermarks("g1") == {}


def test_walk_crosses_quarantined_and_stored_rows(store):
    store.store_events("g1", [ev("a", 3), ev("a", 5)], 1.0, quarantined=[qrec("a", 4)])
    store.quarantine([qrec("a", 2)], 1.0)
    assert store.watermarks("g1") == {"a": 0}

    assert store.store_events("g1", [ev("a", 1)], 2.0).watermarks_changed == {"a": 5}


# ---------------------------------------------------------------- registry


def status(state="online", epoch=1, **kw) -> Status:
    return Status(
        device="g1",
        role="gate",
        state=state,
        epoch=epoch,
        ts=1.0,
        versions=Versions(software="0.1", config=2, catalog=3),
        **kw,
    )


def test_status_epoch_rule_is_applied(store):
    assert store.apply_status(status("online", 2, outbox_depth=5), now=10.0)
    assert not store.apply_status(status("offline", 1), now=11.0)  # late will

    (dev,) = store.devices()
    assert (dev.state, dev.epoch, dev.outbox_depth, dev.last_seen) == ("online", 2, 5, 10.0)
    assert dev.versions == {"software": "0.1", "config": 2, "catalog": 3}

    assert store.apply_status(status("offline", 2), now=12.0)
    assert store.devices()[0].state == "offline"


def test_retained_status_does_not_prove_life(store):
    store.apply_status(status("online", 1), now=10.0)
    store.apply_status(status("online", 1, faults=["fault.reader_down"]), now=50.0, seen=False)

    (dev,) = store.devices()
    assert dev.last_seen == 10.0
    assert dev.faults == ["fault.reader_down"]


def test_events_register_an_unknown_device_and_touch_last_seen(store):
    store.store_events("g9", [ev("a", 1)], now=5.0)
    store.store_events("g9", [ev("a", 2)], now=6.0)

    (dev,) = store.devices()
    assert (dev.device, dev.state, dev.first_seen, dev.last_seen) == ("g9", "unknown", 5.0, 6.0)
    assert store.apply_status(status("offline", 1).model_copy(update={"device": "g9"}), 7.0)


# ----------------------------------------------------------------- catalog


def test_catalog_versions_strictly_increase_and_unchanged_appends_nothing(store):
    assert store.catalog_head() == 0
    h1 = store.catalog_upsert_wristbands(
        [WristbandRow("DEADBEEF", "active", "Ann"), WristbandRow("CAFEBABE", "blocked")], 1.0
    )
    h2 = store.catalog_upsert_wristbands([WristbandRow("DEADBEEF", "active", "Ann")], 2.0)
    h3 = store.catalog_upsert_wristbands([("DEADBEEF", "lost", "Ann")], 3.0)
    h4 = store.catalog_delete_wristbands(["CAFEBABE", "00000000"], 4.0)

    assert (h1, h2, h3, h4) == (2, 2, 3, 4)
    changes = store.catalog_changes(0, 100)
    assert [c.version for c in changes] == [1, 2, 3, 4]
    assert [(c.op, c.key) for c in changes] == [
        ("upsert", "DEADBEEF"),
        ("upsert", "CAFEBABE"),
        ("upsert", "DEADBEEF"),
        ("delete", "CAFEBABE"),
    ]
    assert changes[2].data is not None and changes[2].data.status == "lost"
    assert changes[3].data is None
    assert store.wristband("DEADBEEF") == WristbandRow("DEADBEEF", "lost", "Ann", None)
    assert store.wristband("CAFEBABE") is None


def test_catalog_paging(store):
    store.catalog_upsert_wristbands([WristbandRow(f"{n:08X}") for n in range(1, 11)], 1.0)

    pages, since = [], 0
    while True:
        page = store.catalog_changes(since, 3)
        if not page:
            break
        pages.append([c.version for c in page])
        since = page[-1].version

    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]


def test_invalid_wristband_writes_nothing(store):
    with pytest.raises(StoreError, match="invalid wristband"):
        store.catalog_upsert_wristbands(
            [WristbandRow("DEADBEEF"), WristbandRow("not-hex", "active")], 1.0
        )
    with pytest.raises(StoreError):
        store.catalog_upsert_wristbands([WristbandRow("DEADBEEF", "stolen")], 1.0)  # type: ignore[arg-type]
    assert store.catalog_head() == 0


def test_another_writer_is_seen_by_the_open_connection(store, tmp_path):
    with SqliteStorage(tmp_path / "c.sqlite") as admin:
        admin.catalog_upsert_wristbands([WristbandRow("DEADBEEF")], 1.0)
    assert store.catalog_head() == 1
    assert store.catalog_upsert_wristbands([WristbandRow("CAFEBABE")], 2.0) == 2


# ----------------------------------------------------------------- reports


def test_reports_count_and_iterate(store):
    store.store_events("g1", [ev("a", 1), ev("a", 2, "gate.deny")], 1.0)
    store.store_events("g2", [ev("a", 1)], 1.0)

    assert store.count_events() == 3
    assert store.count_events(kind="gate.grant") == 2
    assert store.count_events(kind="gate.grant", device="g2") == 1
    assert store.event_counts() == {"gate.deny": 1, "gate.grant": 2}
    rows = list(store.events(kind="gate.grant"))
    assert [(r.device, r.seq) for r in rows] == [("g1", 1), ("g2", 1)]
    assert rows[0].data == {"uid": "DEADBEEF", "n": 1}


def test_readonly_sees_writes_and_refuses_to_write(store, tmp_path):
    store.store_events("g1", [ev("a", 1)], 1.0)
    with SqliteStorage(tmp_path / "c.sqlite", readonly=True) as ro:
        assert ro.count_events() == 1
        store.store_events("g1", [ev("a", 2)], 2.0)
        assert ro.count_events() == 2
        with pytest.raises(StoreError, match="read-only"):
            ro.store_events("g1", [ev("a", 3)], 3.0)


def test_readonly_of_a_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no central store"):
        SqliteStorage(tmp_path / "nope.sqlite", readonly=True)


# ------------------------------------------------------------------ schema


def test_schema_is_idempotent_and_wal(tmp_path):
    path = tmp_path / "c.sqlite"
    for _ in range(2):
        with SqliteStorage(path) as s:
            s.store_events("g1", [ev("a", 1)], 1.0)
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    finally:
        con.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    SqliteStorage(path).close()
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE schema_version SET version = 99")
    con.close()

    with pytest.raises(StoreError, match="schema 99"):
        SqliteStorage(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        SqliteStorage(path)


def test_open_storage_by_name(tmp_path):
    with pytest.raises(StoreError, match="unknown store backend"):
        open_storage("postgres", tmp_path / "x")
    s = open_storage("sqlite", tmp_path / "c.sqlite", "NORMAL")
    s.close()
