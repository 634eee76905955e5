"""The device runtime with a simulated rotation sensor, against a real Mosquitto.

A plain MQTT client stands where central stands (it never acknowledges, so the device
re-sends: events are told apart by (stream, seq)).
"""

import json
import queue
import sqlite3
import threading

import pytest
from runtime_rig import UID, Peer, device_config, seed

from controller.runtime import DeviceRuntime
from controller.store import DeviceStore
from drivers.registry import build_drivers
from entrada import protocol
from entrada.site import wait_until


def rotation_config(tmp_path, port, rotation_timeout, auto_rotate=None):
    drivers = {"rotation": "sim"}
    if auto_rotate is not None:
        drivers["sim"] = {"auto_rotate": auto_rotate}
    return device_config(
        tmp_path, port, gate={"rotation_timeout": rotation_timeout}, drivers=drivers
    )


class Gate:
    """A running device with its drivers, its peer and what the peer has seen."""

    def __init__(self, tmp_path, port, **options):
        self.cfg = rotation_config(tmp_path, port, **options)
        self.drivers = build_drivers(self.cfg.drivers)
        self.rt = DeviceRuntime(
            self.cfg, self.drivers, DeviceStore(self.cfg.device.data_dir / "device.db")
        )
        self.peer = Peer(port)
        self.events: dict[tuple[str, int], protocol.Event] = {}
        self.thread = threading.Thread(target=self.rt.run, daemon=True)
        self.thread.start()
        seed(self.peer, self.rt, {UID: "active"})

    def wait_for(self, *kinds, timeout=5.0):
        """Events seen so far, oldest first, once every kind in ``kinds`` is among them."""
        while not set(kinds) <= {e.kind for e in self.events.values()}:
            try:
                _t, payload, _r = self.peer.next("gate-1/events", timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kinds} in {self.kinds()}") from None
            for e in protocol.decode(protocol.EventBatch, payload).events:
                self.events[(e.stream, e.seq)] = e
        return [self.events[k] for k in sorted(self.events)]

    def kinds(self):
        return [self.events[k].kind for k in sorted(self.events)]

    def stop(self):
        self.rt.request_stop("test over")
        self.thread.join(10)
        self.peer.close()
        assert not self.thread.is_alive()


@pytest.fixture
def start(tmp_path, broker):
    started = []

    def start_gate(**options):
        started.append(Gate(tmp_path, broker.port, **options))
        return started[-1]

    yield start_gate
    for gate in started:
        if gate.thread.is_alive():
            gate.stop()


def test_a_grant_becomes_a_passage_when_the_turnstile_turns(start):
    gate = start(rotation_timeout=5.0)
    gate.drivers.rfid.inject(UID)
    assert wait_until(lambda: gate.rt.role.pending == 1, 5)

    gate.drivers.rotation.rotate()

    granted, passage = gate.wait_for("gate.granted", "gate.passage")
    assert (granted.kind, passage.kind) == ("gate.granted", "gate.passage")
    assert granted.data["granted_at"] == passage.data["granted_at"]
    assert passage.data["uid"] == UID and passage.data["outcome"] == "granted"
    assert passage.data["rotated_at"] >= passage.data["granted_at"]
    assert gate.drivers.relay.pulses == [0.2]
    assert gate.rt.counters.rotations == 1
    assert gate.rt.role.pending == 0


def test_no_turn_in_time_annuls_the_entry_well_within_a_second(start):
    gate = start(rotation_timeout=0.3)

    gate.drivers.rfid.inject(UID)

    events = gate.wait_for("gate.annulled")
    assert [e.kind for e in events] == ["gate.granted", "gate.annulled"]
    annulled = events[1].data
    assert annulled["reason"] == "timeout" and annulled["uid"] == UID
    waited = annulled["annulled_at"] - annulled["granted_at"]
    assert 0.3 <= waited < 0.3 + 0.5  # checked on every pass of the loop, not once a second
    assert gate.rt.counters.events == {"gate.granted": 1, "gate.annulled": 1}


def test_a_turn_with_nothing_pending_is_recorded_and_signalled(start):
    gate = start(rotation_timeout=5.0)

    gate.drivers.rotation.rotate()

    (event,) = gate.wait_for("gate.rotation_unexpected")
    assert event.data["outcome"] == "rotation.unexpected"
    assert "rotation.unexpected" in gate.drivers.indicator.signals


def test_auto_rotate_walks_every_grant_through(start):
    gate = start(rotation_timeout=5.0, auto_rotate=0.1)

    gate.drivers.rfid.inject(UID)

    events = gate.wait_for("gate.passage")
    assert [e.kind for e in events] == ["gate.granted", "gate.passage"]
    assert gate.drivers.rotation.rotations == ["auto"]


def test_a_clean_stop_annuls_what_is_still_pending(start):
    gate = start(rotation_timeout=60.0)
    gate.drivers.rfid.inject(UID)
    assert wait_until(lambda: gate.rt.counters.events.get("gate.granted") == 1, 5)

    gate.stop()

    db = sqlite3.connect(gate.cfg.device.data_dir / "device.db")
    rows = db.execute("SELECT kind, data FROM outbox ORDER BY seq").fetchall()
    db.close()
    assert [kind for kind, _ in rows] == ["gate.granted", "gate.annulled"]
    assert json.loads(rows[1][1])["reason"] == "shutdown"
