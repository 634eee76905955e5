"""The central service against a real Mosquitto: ingest and ack, catalog, registry,
restarts, bad input. Devices are plain paho clients (see conftest.FakeDevice)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from central import admin
from central.daemon import run_central
from central.registry import Presence
from central.service import CentralService
from entrada.errors import StoreError
from entrada.protocol import MAX_PAYLOAD_BYTES

pytestmark = pytest.mark.scenario


def status_payload(device: str, state: str, epoch: int, **extra) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "type": "status",
            "device": device,
            "role": "gate",
            "state": state,
            "epoch": epoch,
            "ts": 1.0,
            **extra,
        }
    ).encode()


def test_events_are_stored_then_acked_retained(
    central, device_factory, client_factory, read_store, topics, event, wait_for
):
    gate = device_factory("gate-1")

    gate.send([event("gate", n) for n in range(1, 201)])

    wait_for(lambda: gate.acked("gate") == 200)
    store = read_store()
    assert store.count_events(device="gate-1") == 200
    assert store.watermarks("gate-1") == {"gate": 200}
    # the ack is retained: a device that reboots reads it at once
    late = client_factory("late-reader")
    late.subscribe(topics.ack("gate-1"))
    ack = wait_for(lambda: late.last_json(topics.ack("gate-1")))
    assert ack["type"] == "ack" and ack["streams"] == {"gate": 200}


def test_duplicates_and_reordering_are_harmless(
    central, device_factory, read_store, event, wait_for
):
    gate = device_factory("gate-1")
    evs = {n: event("gate", n) for n in range(1, 11)}
    other = event("audit", 1, kind="gate.manual_open")

    gate.send([evs[n] for n in (6, 7, 8, 9, 10)])
    gate.send([evs[n] for n in (3, 1)] + [other])
    wait_for(lambda: gate.acked("audit") == 1)
    assert gate.acked("gate") == 1  # 2 is missing: the watermark waits
    gate.send([evs[n] for n in (2, 4, 5, 1, 6)])  # gap filled, with duplicates

    wait_for(lambda: gate.acked("gate") == 10)
    ack = gate.last_json(gate.topics.ack("gate-1"))
    assert ack["streams"] == {"audit": 1, "gate": 10}  # every stream of the device
    assert read_store().count_events(device="gate-1") == 11


def test_a_resend_of_acked_events_is_acked_again(central, device_factory, event, wait_for):
    gate = device_factory("gate-1")
    batch = [event("gate", n) for n in (1, 2)]
    gate.send(batch)
    wait_for(lambda: gate.acked("gate") == 2)
    before = len(gate.messages(gate.topics.ack("gate-1")))

    gate.send(batch)  # the device missed the ack and re-sends

    wait_for(lambda: len(gate.messages(gate.topics.ack("gate-1"))) > before)


def test_poison_event_does_not_block_its_stream(
    central, device_factory, read_store, event, wait_for, caplog
):
    caplog.set_level(logging.WARNING, "central")
    gate = device_factory("gate-1")
    poison = {**event("gate", 2), "kind": "NOT VALID"}

    gate.send([event("gate", 1), poison, event("gate", 3)])

    wait_for(lambda: gate.acked("gate") == 3)
    store = read_store()
    assert store.count_events() == 2
    assert store.count_quarantined("gate-1") == 1
    assert any("quarantined" in r.getMessage() for r in caplog.records)


def test_catalog_request_gets_a_page_and_head_follows_admin_writes(
    central, client_factory, device_factory, topics, wait_for
):
    watcher = client_factory("watcher")
    watcher.subscribe(topics.catalog_head)
    wait_for(lambda: (watcher.last_json(topics.catalog_head) or {}).get("version") == 0)

    head = admin.set_wristbands(
        central.db_path, [(f"{n:08X}", "active", f"v{n}") for n in range(1, 6)]
    )
    assert head == 5
    wait_for(lambda: watcher.last_json(topics.catalog_head)["version"] == 5)

    gate = device_factory("gate-1")
    gate.subscribe(topics.catalog_page("gate-1"))
    gate.send_raw("catalog/req", b'{"v":1,"type":"catalog_request","since":2,"limit":2}')

    page = wait_for(lambda: gate.last_json(topics.catalog_page("gate-1")))
    assert (page["from_version"], page["to_version"], page["head"]) == (2, 4, 5)
    assert [c["key"] for c in page["changes"]] == ["00000003", "00000004"]


def test_status_birth_and_late_will(central, client_factory, topics, wait_for):
    tech = client_factory("tech")
    st = topics.status("gate-1")

    tech.publish(
        st,
        status_payload(
            "gate-1",
            "online",
            2,
            outbox_depth=7,
            versions={"software": "1.0", "config": 3, "catalog": 5},
        ),
        retain=True,
    )
    tech.publish(st, status_payload("gate-1", "offline", 1))  # late will of epoch 1

    def registry():
        rows = admin.device_views(central.db_path, offline_after=60.0)
        return rows[0] if rows and central.stats.statuses_ignored >= 1 else None

    row = wait_for(registry)
    assert (row.presence, row.epoch, row.outbox_depth, row.software) == (
        Presence.ONLINE,
        2,
        7,
        "1.0",
    )

    tech.publish(st, status_payload("gate-1", "offline", 2), retain=True)  # its own will
    wait_for(lambda: admin.list_devices(central.db_path, 60.0)[0]["state"] == "offline")


def test_nothing_lost_across_a_central_restart(
    central, device_factory, read_store, event, wait_for
):
    gate = device_factory("gate-1")
    outbox = {n: event("gate", n) for n in range(1, 4001)}
    sent = [0]
    errors: list[BaseException] = []

    def produce() -> None:  # publishes at a steady pace, whatever central is doing
        try:
            for start in range(1, 4001, 50):
                gate.send([outbox[n] for n in range(start, start + 50)])
                sent[0] = start + 49
                threading.Event().wait(0.005)
        except BaseException as err:  # surfaced by the assertion below
            errors.append(err)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: sent[0] >= 1000)
    central.stop()
    down_at = sent[0]
    wait_for(lambda: sent[0] >= down_at + 500)  # published while central is down
    central.start()
    producer.join(30)
    assert not errors

    assert central.wait_ready(10)
    gate.sync(outbox, "gate")  # the device re-sends whatever is not acknowledged

    store = read_store()
    assert store.count_events(device="gate-1") == 4000
    assert store.watermarks("gate-1") == {"gate": 4000}


def test_persistent_session_delivers_what_came_while_central_was_down(
    central, device_factory, event, wait_for
):
    gate = device_factory("gate-1")
    gate.send([event("gate", 1)])
    wait_for(lambda: gate.acked("gate") == 1)
    central.stop()

    gate.send([event("gate", 2)])  # sent once, never re-sent
    central.start()

    wait_for(lambda: gate.acked("gate") == 2)


def test_nothing_lost_when_the_broker_dies(
    central, broker, device_factory, read_store, event, wait_for
):
    gate = device_factory("gate-1")
    outbox = {n: event("gate", n) for n in range(1, 1001)}
    gate.sync({n: outbox[n] for n in range(1, 501)}, "gate")

    broker.kill()  # no persistence: sessions, retained acks and queued messages are gone
    wait_for(lambda: not central.connected)
    broker.start()
    assert central.wait_ready(10)
    gate.sync(outbox, "gate")

    assert read_store().count_events(device="gate-1") == 1000


def test_bad_payloads_on_every_topic_are_logged_and_survived(
    central, device_factory, read_store, event, wait_for, caplog
):
    caplog.set_level(logging.WARNING, "central")
    gate = device_factory("gate-1")
    junk = [
        b"",
        b"\xff\xfe",
        b"{",
        b"[]",
        b'{"v":9}',
        b'{"v":1,"type":"x"}',
        b"x" * 2048,
        b"{" + b" " * MAX_PAYLOAD_BYTES + b"}",
    ]
    for leaf in ("events", "status", "catalog/req"):
        for payload in junk:
            gate.send_raw(leaf, payload)
    gate.send_raw("status", status_payload("gate-2", "online", 1))  # someone else's status
    gate.send_raw(
        "events",
        json.dumps(
            {"v": 1, "type": "events", "device": "gate-2", "events": [event("gate", 1)]}
        ).encode(),
    )

    gate.send([event("gate", 1)])  # a good batch after all that is still served
    wait_for(lambda: gate.acked("gate") == 1)

    assert central.running
    assert read_store().count_quarantined("gate-1") == len(junk) + 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    for code in (
        "reject.not_json",
        "reject.not_utf8",
        "reject.shape",
        "reject.schema_version",
        "reject.too_large",
        "reject.wrong_device",
    ):
        assert code in text
    # throttled: far fewer lines than bad payloads
    assert len(caplog.records) < 3 * len(junk)


def test_restart_on_same_object_and_stop_is_idempotent(central_cfg):
    service = CentralService(central_cfg)
    service.stop()  # not started: nothing to do
    for _ in range(2):
        service.start()
        assert service.wait_ready(10)
        service.stop()
    assert not service.running
    assert not service.wait_ready(0.1)


def test_run_central_config_error_lists_every_problem(tmp_path, capsys):
    cfg = tmp_path / "central.toml"
    cfg.write_text('[central]\nsite = "bad site!"\nclient = "x"\n[ingest]\nbatch_max = 0\n')

    assert run_central(str(cfg)) == 2
    err = capsys.readouterr().err
    assert "central.site" in err and "did you mean 'client_id'" in err
    assert "ingest.batch_max" in err


def test_run_central_stops_cleanly_on_sigterm(tmp_path, broker, device_factory, event, wait_for):
    cfg = tmp_path / "central.toml"
    cfg.write_text(
        f'[central]\nsite = "test"\ndata_dir = "{tmp_path / "data"}"\n'
        f"[mqtt]\nport = {broker.port}\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from central.daemon import run_central; "
            "sys.exit(run_central(sys.argv[1]))",
            str(cfg),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        gate = device_factory("gate-1")
        outbox = {1: event("gate", 1)}
        gate.sync(outbox, "gate", timeout=20)  # re-sends until central is up and acks
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "central stopped" in err


def test_unusable_store_fails_start_and_run(tmp_path, broker, config_factory, monkeypatch):
    monkeypatch.setattr("central.daemon.configure_logging", lambda level: None)  # keep pytest's
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    service = CentralService(config_factory(not_a_dir, broker.port))

    with pytest.raises(StoreError):
        service.start()
    assert not service.running

    toml = tmp_path / "central.toml"
    toml.write_text(f'[central]\nsite = "test"\ndata_dir = "{not_a_dir}"\n')
    assert run_central(str(toml)) == 1


def test_systemd_ready_watchdog_stopping(tmp_path, central_cfg, monkeypatch, wait_for):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # pet every 50 ms
    got: list[str] = []

    def received(text: str) -> bool:
        with contextlib.suppress(TimeoutError):
            got.append(sock.recv(100).decode())
        return got.count(text) >= 1

    service = CentralService(central_cfg)
    try:
        service.start()
        wait_for(lambda: received("READY=1"))
        wait_for(lambda: received("WATCHDOG=1") and got.count("WATCHDOG=1") >= 3)
    finally:
        service.stop()
    wait_for(lambda: received("STOPPING=1"))
    sock.close()


def test_a_payload_refused_whole_is_quarantined_once_however_often_it_comes(
    central, device_factory, read_store, event, wait_for
):
    gate = device_factory("gate-1")
    for _ in range(5):
        gate.send_raw("events", b'{"v":1,"type":"events","device":"gate-1","events":"no"}')
    gate.send([event("gate", 1)])  # a good batch after them: all five were handled
    wait_for(lambda: gate.acked("gate") == 1)
    assert read_store().count_quarantined("gate-1") == 1


def test_an_overwritten_catalog_head_is_put_back(central, client_factory, topics, wait_for):
    reader = client_factory("head-reader")
    reader.subscribe(topics.catalog_head)
    first = wait_for(lambda: reader.last_json(topics.catalog_head))
    vandal = client_factory("vandal")
    vandal.publish(
        topics.catalog_head, b'{"v":1,"type":"catalog_head","version":999,"ts":0}', retain=True
    )

    def versions():
        return [json.loads(m)["version"] for m in reader.messages(topics.catalog_head)]

    # the vandal's head is seen, and after it central's own again
    wait_for(lambda: 999 in versions() and versions()[-1] == first["version"])
