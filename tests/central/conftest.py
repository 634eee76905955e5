"""Fixtures for the central service tests: a real Mosquitto on a free port, a central
config pointing at it, the running service, and plain paho clients playing devices.

Helpers are fixtures (not imports) so the tests work whatever pytest's import mode.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.service import CentralService
from central.settings import CentralConfig
from central.sqlite_store import SqliteStorage
from entrada import config as entrada_config
from entrada.broker import PrivateBroker
from entrada.protocol import Topics

SITE = "test"
Waiter = Callable[..., Any]


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture
def wait_for() -> Waiter:
    return _wait_for


@pytest.fixture
def topics() -> Topics:
    return Topics(SITE)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    b.start()
    yield b
    b.stop()


def make_config(data_dir: Path, port: int, **sections: dict[str, Any]) -> CentralConfig:
    doc: dict[str, Any] = {
        "central": {"site": SITE, "data_dir": str(data_dir), "client_id": "central"},
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "keepalive": 5,
            "reconnect_min": 0.05,
            "reconnect_max": 0.5,
        },
        "ingest": {"batch_window": 0.01},
    }
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    return entrada_config.validate(CentralConfig, doc, "test")


@pytest.fixture
def central_cfg(tmp_path: Path, broker: PrivateBroker) -> CentralConfig:
    return make_config(tmp_path / "central", broker.port)


@pytest.fixture
def central(central_cfg: CentralConfig) -> Iterator[CentralService]:
    service = CentralService(central_cfg)
    service.start()
    assert service.wait_ready(10)
    yield service
    service.stop()


@pytest.fixture
def read_store(central_cfg: CentralConfig) -> Iterator[Callable[[], SqliteStorage]]:
    """Open read-only views of the central store (closed at teardown)."""
    opened: list[SqliteStorage] = []

    def open_() -> SqliteStorage:
        store = SqliteStorage(central_cfg.central.data_dir / "central.sqlite", readonly=True)
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


class Client:
    """A plain paho MQTT 5 client that records what it receives, per topic."""

    def __init__(self, port: int, client_id: str) -> None:
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self._lock = threading.Lock()
        self._subacks: set[int] = set()
        self._topics: list[tuple[str, int]] = []
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self._disconnected.set()
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.reconnect_delay_set(0.05, 0.5)
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c
        assert self._connected.wait(10), "test client could not connect"

    def _on_connect(self, client: Any, *rest: Any) -> None:
        for topic, qos in self._topics:  # the broker may have lost the session
            client.subscribe(topic, qos)
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.received[msg.topic].append(bytes(msg.payload))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            self._subacks.add(mid)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._topics.append((topic, qos))
        _rc, mid = self.client.subscribe(topic, qos)
        _wait_for(lambda: mid in self._subacks, 10)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def try_publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish if connected (a device's outbox simply tries again later)."""
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return False
        info.wait_for_publish(5)
        return info.is_published()

    def messages(self, topic: str) -> list[bytes]:
        with self._lock:
            return list(self.received.get(topic, []))

    def last_json(self, topic: str) -> dict[str, Any] | None:
        msgs = self.messages(topic)
        return json.loads(msgs[-1]) if msgs else None

    def close(self) -> None:
        self.client.disconnect()
        self._disconnected.wait(5)
        self.client.loop_stop()


def make_event(stream: str, seq: int, kind: str = "gate.grant", **data: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "stream": stream,
        "seq": seq,
        "kind": kind,
        "ts": 1.0e9,
        "data": data or {"uid": "DEADBEEF"},
    }


def events_payload(device: str, events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"v": 1, "type": "events", "device": device, "events": events}).encode()


class FakeDevice(Client):
    """A device as central sees it: publishes event batches, reads its retained ack, and
    re-sends what is not acknowledged (its outbox), like the real controller."""

    def __init__(self, port: int, device: str, topics: Topics) -> None:
        super().__init__(port, device)
        self.device = device
        self.topics = topics
        self.subscribe(topics.ack(device))

    def send(self, events: list[dict[str, Any]]) -> None:
        self.publish(self.topics.events(self.device), events_payload(self.device, events))

    def send_raw(self, leaf: str, payload: bytes) -> None:
        self.publish(self.topics.device(self.device, leaf), payload)

    def acked(self, stream: str) -> int:
        ack = self.last_json(self.topics.ack(self.device))
        return int(ack["streams"].get(stream, 0)) if ack else 0

    def sync(
        self,
        outbox: dict[int, dict[str, Any]],
        stream: str,
        timeout: float = 20.0,
        batch: int = 200,
        resend_after: float = 1.0,
    ) -> None:
        """Send everything in ``outbox`` above the ack, re-sending until all is acked."""
        top = max(outbox)
        deadline = time.monotonic() + timeout
        while self.acked(stream) < top:
            assert time.monotonic() < deadline, f"not acknowledged: {self.acked(stream)}<{top}"
            pending = [outbox[s] for s in sorted(outbox) if s > self.acked(stream)]
            for i in range(0, len(pending), batch):
                payload = events_payload(self.device, pending[i : i + batch])
                if not self.try_publish(self.topics.events(self.device), payload):
                    break
            until = time.monotonic() + resend_after
            while time.monotonic() < until and self.acked(stream) < top:
                time.sleep(0.02)


@pytest.fixture
def client_factory(broker: PrivateBroker) -> Iterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(client_id: str) -> Client:
        c = Client(broker.port, client_id)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def device_factory(broker: PrivateBroker, topics: Topics) -> Iterator[Callable[[str], FakeDevice]]:
    made: list[FakeDevice] = []

    def make(device: str) -> FakeDevice:
        d = FakeDevice(broker.port, device, topics)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    return make_event


@pytest.fixture
def config_factory() -> Callable[..., CentralConfig]:
    """make_config(data_dir, port, **sections) -> CentralConfig."""
    return make_config
