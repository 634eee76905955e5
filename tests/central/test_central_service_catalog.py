"""The running service serves snapshots and compacts the catalog's change log."""

from __future__ import annotations

import json

import pytest

from central.service import CentralService
from central.sqlite_store import SqliteStorage
from entrada.protocol import WristbandData

pytestmark = pytest.mark.scenario


def request(since: int, limit: int = 1000, snapshot: dict | None = None) -> bytes:
    body = {"v": 1, "type": "catalog_request", "since": since, "limit": limit}
    if snapshot is not None:
        body["snapshot"] = snapshot
    return json.dumps(body).encode()


def test_a_device_far_behind_pages_through_a_snapshot_and_the_log_is_compacted(
    tmp_path, broker, config_factory, device_factory, topics, wait_for
):
    cfg = config_factory(
        tmp_path / "central",
        broker.port,
        catalog={"snapshot_after": 100, "keep_versions": 1000, "page_size": 600},
    )
    db = cfg.central.data_dir / "central.sqlite"
    with SqliteStorage(db) as store:
        store.catalog_apply(
            [("wristband", f"{n:08X}", WristbandData()) for n in range(1, 1501)], 1.0
        )
    service = CentralService(cfg)
    service.start()
    try:
        assert service.wait_ready(10)
        with SqliteStorage(db, readonly=True) as ro:
            wait_for(lambda: ro.catalog_floor() == 500)  # compacted at start
        gate = device_factory("gate-1")
        page_topic = topics.catalog_page("gate-1")
        gate.subscribe(page_topic)

        keys, snapshot = [], None
        for n in range(1, 4):
            gate.send_raw("catalog/req", request(1300, 1000, snapshot))
            reply = wait_for(
                lambda n=n: len(gate.messages(page_topic)) == n and gate.last_json(page_topic)
            )
            assert reply["type"] == "catalog_snapshot" and reply["as_of"] == 1500
            keys += [r["key"] for r in reply["rows"]]
            snapshot = {"as_of": reply["as_of"], "after": reply["next"]}
        assert reply["next"] is None
        assert keys == [f"{n:08X}" for n in range(1, 1501)]

        gate.send_raw("catalog/req", request(1450))  # close behind: the log
        reply = wait_for(lambda: len(gate.messages(page_topic)) == 4 and gate.last_json(page_topic))
        assert reply["type"] == "catalog_page" and reply["to_version"] == 1500
        assert service.stats.snapshot_pages_served == 3 and service.stats.pages_served == 1
        assert service.stats.catalog_compacted == 500
    finally:
        service.stop()
