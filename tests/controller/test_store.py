import sqlite3

import pytest

from controller.store import DeviceStore, next_epoch
from entrada.protocol import WristbandChange, WristbandData


@pytest.fixture
def store(tmp_path):
    s = DeviceStore(tmp_path / "device.db")
    yield s
    s.close()


def upsert(version, uid, status="active"):
    return WristbandChange(
        version=version, entity="wristband", op="upsert", key=uid, data=WristbandData(status=status)
    )


def test_new_store_is_reported_missing_and_empty(store):
    assert store.rebuilt_reason == "missing"
    assert store.catalog_version == 0
    assert store.outbox_depth() == 0


def test_catalog_page_applies_in_order(store):
    store.apply_catalog(
        [
            upsert(1, "04AA0001"),
            upsert(2, "04AA0002"),
            WristbandChange(version=3, entity="wristband", op="delete", key="04AA0001"),
            upsert(4, "04AA0002", "blocked"),
        ],
        to_version=4,
    )
    assert store.catalog_version == 4
    assert store.wristband("04AA0001") is None
    assert store.wristband("04AA0002").status == "blocked"


def test_events_are_numbered_per_stream_without_gaps(store):
    stream = store.stream_name("gate")
    with store.transaction() as tx:
        a = tx.emit(stream, "gate.passage", 1.0, {"uid": "04AA"})
        b = tx.emit(stream, "gate.passage", 2.0, {"uid": "04BB"})
    assert (a.seq, b.seq) == (1, 2)
    assert store.emitted() == {stream: 2}
    assert [r.seq for r in store.outbox_after(stream, 0, 10)] == [1, 2]


def test_failed_transaction_leaves_no_event_and_no_gap(store):
    stream = store.stream_name("gate")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.emit(stream, "gate.passage", 1.0, {})
        raise RuntimeError("power cut")
    assert store.outbox_depth() == 0
    with store.transaction() as tx:
        assert tx.emit(stream, "gate.passage", 1.0, {}).seq == 1


def test_acknowledge_deletes_up_to_watermark(store):
    stream = store.stream_name("gate")
    with store.transaction() as tx:
        for i in range(5):
            tx.emit(stream, "gate.passage", float(i), {})
    assert store.acknowledge(stream, 3) == 3
    assert [r.seq for r in store.outbox_after(stream, 0, 10)] == [4, 5]


def test_sequence_survives_reopen(tmp_path):
    s = DeviceStore(tmp_path / "d.db")
    stream = s.stream_name("gate")
    with s.transaction() as tx:
        tx.emit(stream, "gate.passage", 1.0, {})
    s.close()
    s2 = DeviceStore(tmp_path / "d.db")
    with s2.transaction() as tx:
        assert tx.emit(stream, "gate.passage", 1.0, {}).seq == 2
    assert s2.rebuilt_reason is None
    s2.close()


def test_corrupt_file_is_rebuilt_and_outbox_salvaged(tmp_path):
    path = tmp_path / "d.db"
    s = DeviceStore(path)
    old_stream = s.stream_name("gate")
    s.apply_catalog([upsert(1, "04AA0001")], 1)
    with s.transaction() as tx:
        for i in range(3):
            tx.emit(old_stream, "gate.passage", float(i), {"i": i})
    s.close()
    # damage the catalog table's pages but leave the outbox readable
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='catalog'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)

    s2 = DeviceStore(path)
    assert s2.rebuilt_reason is not None and s2.rebuilt_reason.startswith("corrupt")
    assert s2.catalog_version == 0  # catalog comes again from central
    assert [r.data for r in s2.outbox_after(old_stream, 0, 10)] == ['{"i":0}', '{"i":1}', '{"i":2}']
    assert s2.stream_name("gate") != old_stream  # new numbers never collide with old ones
    assert list(tmp_path.glob("d.db.corrupt-*"))
    s2.close()


def test_garbage_file_is_rebuilt(tmp_path):
    path = tmp_path / "d.db"
    path.write_bytes(b"this is not a database" * 100)
    s = DeviceStore(path)
    assert s.rebuilt_reason.startswith("corrupt")
    assert s.outbox_depth() == 0
    s.close()


def test_epoch_always_grows(tmp_path):
    s = DeviceStore(tmp_path / "d.db")
    first = next_epoch(s.path, 1000.0)
    assert first == 1000
    assert next_epoch(s.path, 500.0) == 1001  # clock went back
    assert next_epoch(s.path, 5000.0) == 5000
    s.close()
