"""Catalog pages, snapshots, the payload limit, compaction and the retained head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.catalog import Compactor, HeadPublisher, answer, answer_request, build_page
from central.sqlite_store import SqliteStorage
from central.store import WristbandRow
from entrada.errors import ProtocolError
from entrada.protocol import (
    MAX_PAGE_CHANGES,
    MAX_PAYLOAD_BYTES,
    CatalogPage,
    CatalogRequest,
    CatalogSnapshot,
    SnapshotCursor,
    Topics,
    WristbandData,
    decode,
    encode,
)

TOPICS = Topics("test")


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStorage(tmp_path / "c.sqlite", synchronous="NORMAL")
    s.catalog_upsert_wristbands([WristbandRow(f"{n:08X}") for n in range(1, 8)], 1.0)
    yield s
    s.close()


@pytest.mark.parametrize(
    ("since", "limit", "page_size", "versions", "to_version"),
    [
        (0, 1000, 1000, [1, 2, 3, 4, 5, 6, 7], 7),
        (0, 3, 1000, [1, 2, 3], 3),  # the device's limit
        (0, 1000, 2, [1, 2], 2),  # the site's page size
        (5, 1000, 1000, [6, 7], 7),
        (7, 1000, 1000, [], 7),  # up to date
        (9, 1000, 1000, [], 9),  # ahead of central (central's store was replaced)
    ],
)
def test_build_page(store, since, limit, page_size, versions, to_version):
    page = build_page(store, since, limit, page_size)

    assert [c.version for c in page.changes] == versions
    assert (page.from_version, page.to_version, page.head) == (since, to_version, 7)


def test_answer_request_goes_to_the_device_page_topic(store):
    topic, body, _ = answer_request(
        store, TOPICS, "g1", b'{"v":1,"type":"catalog_request","since":6}', 1000
    )

    assert topic == "entrada/test/device/g1/catalog/page"
    page = decode(CatalogPage, body)
    assert [c.key for c in page.changes] == ["00000007"]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{}",
        b'{"v":1,"type":"catalog_request","since":-1}',
        b'{"v":1,"type":"catalog_request","since":0,"limit":0}',
    ],
)
def test_bad_request(store, payload):
    with pytest.raises(ProtocolError):
        answer_request(store, TOPICS, "g1", payload, 1000)


def test_head_publisher(store):
    sent: list[tuple[str, dict, int, bool]] = []
    link_up = [False]

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        if link_up[0]:
            sent.append((topic, json.loads(payload), qos, retain))
        return link_up[0]

    heads = HeadPublisher(TOPICS, interval=0.5)
    assert not heads.check(store, publish, now=100.0, mono=0.0)  # link down: nothing sent
    link_up[0] = True
    assert not heads.check(store, publish, now=100.1, mono=0.1)  # not time to look yet
    assert heads.check(store, publish, now=100.5, mono=0.5)
    assert not heads.check(store, publish, now=101.0, mono=1.0)  # unchanged
    store.catalog_upsert_wristbands([WristbandRow("DEADBEEF")], 2.0)
    assert heads.check(store, publish, now=101.5, mono=1.5)
    heads.reset()  # reconnected: publish again even though unchanged
    assert heads.check(store, publish, now=101.6, mono=1.6)

    assert [(t, p["version"], q, r) for t, p, q, r in sent] == [
        ("entrada/test/catalog/head", 7, 1, True),
        ("entrada/test/catalog/head", 8, 1, True),
        ("entrada/test/catalog/head", 8, 1, True),
    ]


# ------------------------------------------------------------ page or snapshot


def request(since: int, limit: int = 1000, snapshot: dict | None = None) -> CatalogRequest:
    return CatalogRequest(
        since=since, limit=limit, snapshot=SnapshotCursor(**snapshot) if snapshot else None
    )


def test_a_device_close_behind_gets_the_log(store):
    reply = answer(store, request(2), page_size=1000, snapshot_after=5)
    assert isinstance(reply, CatalogPage) and reply.to_version == 7


@pytest.mark.parametrize(
    ("since", "why"),
    [(1, "more than snapshot_after behind"), (9, "ahead of central: its store was replaced")],
)
def test_a_device_far_behind_or_ahead_gets_a_snapshot(store, since, why):
    reply = answer(store, request(since, limit=3), page_size=1000, snapshot_after=5)

    assert isinstance(reply, CatalogSnapshot), why
    assert (reply.as_of, reply.head, reply.after) == (7, 7, None)
    assert [r.key for r in reply.rows] == ["00000001", "00000002", "00000003"]
    assert reply.next == "wristband/00000003"


def test_a_snapshot_continues_from_its_cursor_with_its_as_of(store):
    first = answer(store, request(0, limit=4), page_size=1000, snapshot_after=1)
    store.catalog_upsert_wristbands([WristbandRow("00000009")], 2.0)  # head 8

    cursor = {"as_of": first.as_of, "after": first.next}
    second = answer(store, request(0, limit=4, snapshot=cursor), 1000, snapshot_after=1)

    assert isinstance(second, CatalogSnapshot)
    assert (second.as_of, second.head, second.after, second.next) == (7, 8, first.next, None)
    assert [r.key for r in second.rows] == ["00000005", "00000006", "00000007", "00000009"]


def test_a_snapshot_compacted_past_starts_again(store):
    store.catalog_upsert_wristbands([WristbandRow(f"{n:08X}") for n in range(10, 20)], 2.0)
    store.compact_catalog(keep=5)  # floor 12
    cursor = {"as_of": 7, "after": "wristband/00000003"}

    reply = answer(store, request(0, snapshot=cursor), 1000, snapshot_after=100)

    assert isinstance(reply, CatalogSnapshot)
    assert (reply.as_of, reply.after, reply.next, len(reply.rows)) == (17, None, None, 17)
    behind_floor = answer(store, request(11), 1000, snapshot_after=100)
    assert isinstance(behind_floor, CatalogSnapshot)
    at_floor = answer(store, request(12), 1000, snapshot_after=100)
    assert isinstance(at_floor, CatalogPage) and at_floor.changes[0].version == 13


def test_a_garbage_cursor_is_refused(store):
    payload = (
        b'{"v":1,"type":"catalog_request","since":0,'
        b'"snapshot":{"as_of":7,"after":"../../etc/passwd"}}'
    )
    with pytest.raises(ProtocolError, match=r"reject\.shape"):
        answer_request(store, TOPICS, "g1", payload, 1000)


def test_answer_request_sends_a_snapshot_on_the_page_topic(store):
    topic, body, reply = answer_request(
        store, TOPICS, "g1", b'{"v":1,"type":"catalog_request","since":0}', 2, snapshot_after=3
    )
    assert topic == "entrada/test/device/g1/catalog/page"
    assert decode(CatalogSnapshot, body) == reply


# ------------------------------------------------------------ payload limit


def test_a_full_page_of_wristbands_fits_the_payload_limit(tmp_path):
    """5000 wristbands of 7-byte UIDs fit one page. With a holder's name and every field
    set a row is ~230 bytes, so such a page is cut at ~4500 rows (next test)."""
    with SqliteStorage(tmp_path / "big.sqlite", synchronous="NORMAL") as s:
        s.catalog_apply(
            [("wristband", f"04{n:012X}", WristbandData()) for n in range(MAX_PAGE_CHANGES)], 1.0
        )
        page = build_page(s, 0, MAX_PAGE_CHANGES, MAX_PAGE_CHANGES)
        first = answer(s, request(0, MAX_PAGE_CHANGES), MAX_PAGE_CHANGES, snapshot_after=1)

    assert len(page.changes) == MAX_PAGE_CHANGES
    assert len(encode(page)) < MAX_PAYLOAD_BYTES
    assert isinstance(first, CatalogSnapshot) and len(first.rows) == MAX_PAGE_CHANGES
    assert first.next is None and len(encode(first)) < MAX_PAYLOAD_BYTES


def test_pages_of_large_rows_are_cut_to_the_payload_limit(tmp_path):
    holder = "Ł" * 200  # two bytes each in UTF-8
    with SqliteStorage(tmp_path / "big.sqlite", synchronous="NORMAL") as s:
        s.catalog_apply(
            [("wristband", f"{n:08X}", WristbandData(holder=holder)) for n in range(4000)], 1.0
        )
        page = build_page(s, 0, 5000, 5000)
        snap = answer(s, request(0, 5000), 5000, snapshot_after=1)
        assert isinstance(snap, CatalogSnapshot)
        rest = answer(
            s, request(0, 5000, {"as_of": snap.as_of, "after": snap.next}), 5000, snapshot_after=1
        )

    assert 1000 < len(page.changes) < 4000 and page.to_version == len(page.changes)
    assert len(encode(page)) <= MAX_PAYLOAD_BYTES
    assert len(encode(snap)) <= MAX_PAYLOAD_BYTES
    assert isinstance(rest, CatalogSnapshot)
    assert snap.next == f"wristband/{snap.rows[-1].key}" == rest.after
    assert int(rest.rows[0].key, 16) == int(snap.rows[-1].key, 16) + 1


# ------------------------------------------------------------------ compaction


def test_compactor_paces_itself(store):
    store.catalog_upsert_wristbands([WristbandRow(f"{n:08X}") for n in range(10, 30)], 2.0)
    compactor = Compactor(keep=5, interval=300.0, batch=10)

    assert compactor.check(store, mono=0.0) == 10  # a full batch: again soon
    assert compactor.check(store, mono=1.0) == 0
    assert compactor.check(store, mono=2.5) == 10
    assert compactor.check(store, mono=4.5) == 2  # head 27 - keep 5: done
    assert compactor.check(store, mono=10.0) == 0  # a whole interval now
    assert store.catalog_floor() == 22
