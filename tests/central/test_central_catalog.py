"""Catalog pages and the retained head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.catalog import HeadPublisher, answer_request, build_page
from central.sqlite_store import SqliteStorage
from central.store import WristbandRow
from entrada.errors import ProtocolError
from entrada.protocol import CatalogPage, Topics, decode

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
