"""The device runtime on simulated drivers against a real Mosquitto.

A plain paho client plays central's part where a test needs it (storing nothing, just
acknowledging); whole-site scenarios with the real central live in tests/scenario/.
"""

import threading

import pytest
from runtime_rig import UID, Peer, device_config, seed

from controller.runtime import DeviceRuntime
from controller.store import DeviceStore
from drivers.registry import build_drivers
from entrada import protocol
from entrada.site import wait_until


@pytest.fixture
def running(tmp_path, broker):
    cfg = device_config(tmp_path, broker.port, drivers={"buttons": "sim"})
    drivers = build_drivers(cfg.drivers)
    store = DeviceStore(cfg.device.data_dir / "device.db")
    rt = DeviceRuntime(cfg, drivers, store)
    peer = Peer(broker.port)
    thread = threading.Thread(target=rt.run, daemon=True)
    thread.start()
    yield rt, drivers, peer
    rt.request_stop("test over")
    thread.join(10)
    peer.close()
    assert not thread.is_alive()


def test_birth_is_retained_with_epoch(running):
    _rt, _drivers, peer = running
    _topic, payload, _retain = peer.next("gate-1/status")
    status = protocol.decode(protocol.Status, payload)
    assert status.state == "online" and status.epoch >= 1
    assert "fault.catalog_empty" in status.faults or status.versions.catalog == 0


def test_tap_grants_pulses_and_publishes_event(running):
    rt, drivers, peer = running
    seed(peer, rt, {UID: "active"})
    drivers.rfid.inject(UID)
    _t, payload, _r = peer.next("gate-1/events")
    batch = protocol.decode(protocol.EventBatch, payload)
    assert [(e.kind, e.data["uid"], e.data["outcome"]) for e in batch.events] == [
        ("gate.passage", UID, "granted")
    ]
    assert drivers.relay.pulses == [0.2]


def test_unacknowledged_events_are_resent_and_ack_deletes(running):
    rt, drivers, peer = running
    seed(peer, rt, {UID: "blocked"})
    drivers.rfid.inject(UID)
    _t, first, _r = peer.next("gate-1/events")
    _t, again, _r = peer.next("gate-1/events")  # ack_timeout 0.5 s
    assert first == again
    event = protocol.decode(protocol.EventBatch, first).events[0]
    ack = protocol.Ack(device="gate-1", streams={event.stream: event.seq}, ts=0.0)
    peer.publish(rt.topics.ack("gate-1"), protocol.encode(ack), retain=True)
    assert wait_until(lambda: rt.store.outbox_depth() == 0, 5)
    assert drivers.relay.pulses == []


def test_gate_admits_while_broker_is_down(running, broker):
    rt, drivers, peer = running
    seed(peer, rt, {UID: "active"})
    broker.kill()
    drivers.rfid.inject(UID)
    assert wait_until(lambda: drivers.relay.pulses == [0.2], 5)
    assert wait_until(lambda: rt.store.outbox_depth() == 1, 5)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1,2]",
        b'{"v":2,"type":"ack"}',
        b'{"v":1,"type":"ack","device":"gate-1","streams":{"x":-1},"ts":0}',
        b'{"v":1,"type":"ack","device":"other","streams":{},"ts":0}',
        b"{" * 100_000,
        b"x" * 2_000_000,
    ],
)
def test_bad_payloads_on_every_topic_are_rejected_and_the_gate_keeps_working(running, payload):
    rt, drivers, peer = running
    seed(peer, rt, {UID: "active"})
    for topic in (
        rt.topics.ack("gate-1"),
        rt.topics.catalog_page("gate-1"),
        rt.topics.catalog_head,
        rt.topics.status("gate-1"),
    ):
        peer.publish(topic, payload)
    assert wait_until(lambda: rt.rejected_messages >= 3, 5)
    drivers.rfid.inject(UID)
    assert wait_until(lambda: drivers.relay.pulses == [0.2], 5)
    assert rt.store.catalog_version == 1


def test_a_stuck_relay_is_a_fault_and_the_tap_is_still_recorded(running):
    rt, drivers, peer = running
    seed(peer, rt, {UID: "active"})
    drivers.relay.stuck = True
    drivers.rfid.inject(UID)
    _t, payload, _r = peer.next("gate-1/events")
    event = protocol.decode(protocol.EventBatch, payload).events[0]
    assert event.data["relay_failed"] is True
    assert "fault.relay_failed" in rt.faults
