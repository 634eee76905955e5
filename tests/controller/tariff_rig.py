"""What the tariff-gate tests share: a small aquapark's rules, catalog changes for them, a
wall clock the test moves, and a plain MQTT client standing where central stands.

Aquapark "Fala": facility ⊃ pool ⊃ sauna (2 places). ``timed-2h`` is a 2-hour ticket with
overtime at 5.00 PLN per started 15 minutes; ``day-sauna`` a day ticket whose sauna time
is billed at 10.00 PLN per started 30 minutes (posted to the tab when leaving the sauna);
``online-only`` is refused as soon as the gate is without central. Prices in grosz.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.rules.catalog_schema import parse_catalog
from controller.rules.model import Site
from controller.settings import DeviceConfig
from entrada import protocol

UID = "04A1B2C3D4E5F6"
OTHER = "04B2C3D4E5F6A7"
SITE_ID = "t"
#: Wednesday 10 May 2028, 10:00 in Warsaw: no entry windows or bands to think about.
T0 = datetime(2028, 5, 10, 10, 0, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
MINUTE = 60.0

RULES = {
    "site": {"id": "fala", "tz": "Europe/Warsaw", "currency": "PLN", "passback_minutes": 3},
    "zones": [
        {"id": "facility"},
        {"id": "pool", "parent": "facility"},
        {"id": "sauna", "parent": "pool", "capacity": 2},
    ],
    "tariffs": [
        {
            "id": "timed-2h",
            "zones": ["facility", "pool"],
            "entries": 1,
            "stay": {
                "facility": {
                    "included_minutes": 120,
                    "interval_minutes": 15,
                    "rate": {"prices": {"adult": 500}},
                }
            },
        },
        {
            "id": "day-sauna",
            "zones": ["facility", "pool", "sauna"],
            "entries": 1,
            "stay": {"sauna": {"interval_minutes": 30, "rate": {"prices": {"adult": 1000}}}},
        },
        {
            "id": "online-only",
            "zones": ["facility", "pool"],
            "entries": 1,
            "offline": {"after_minutes": 0, "mode": "deny"},
        },
    ],
}


def site(version: int = 1) -> Site:
    return parse_catalog({"version": version, **RULES})


# ----------------------------------------------------------------- catalog changes


def rules_change(version: int) -> protocol.RulesChange:
    return protocol.RulesChange(
        version=version,
        entity="rules",
        op="upsert",
        key="site",
        data=protocol.RulesData(document=RULES),
    )


def wristband_change(version: int, uid: str = UID) -> protocol.WristbandChange:
    return protocol.WristbandChange(
        version=version, entity="wristband", op="upsert", key=uid, data=protocol.WristbandData()
    )


def entitlement_change(
    version: int, tariff: str, uid: str = UID, key: str | None = None
) -> protocol.EntitlementChange:
    return protocol.EntitlementChange(
        version=version,
        entity="entitlement",
        op="upsert",
        key=key or f"e-{uid}",
        data=protocol.EntitlementData(uid=uid, tariff_id=tariff),
    )


def payment_change(version: int, amount: int, ts: float, uid: str = UID) -> protocol.PaymentChange:
    return protocol.PaymentChange(
        version=version,
        entity="payment",
        op="upsert",
        key=f"pay-{version}",
        data=protocol.PaymentData(uid=uid, amount_minor=amount, method="kiosk", ts=ts),
    )


def catalog(tickets: dict[str, str]) -> list[protocol.CatalogChange]:
    """The rules, then a wristband and one entitlement per ``{uid: tariff}``."""
    changes: list[protocol.CatalogChange] = [rules_change(1)]
    for uid, tariff in tickets.items():
        changes.append(wristband_change(len(changes) + 1, uid))
        changes.append(entitlement_change(len(changes) + 1, tariff, uid))
    return changes


# ------------------------------------------------------------------- the runtime


class StepClock:
    """Wall time that stands still until the test moves it; monotonic time is real, so
    the runtime's timeouts and retries keep their pace."""

    def __init__(self, wall: float = T0) -> None:
        self.wall = wall

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic()

    def advance(self, minutes: float) -> None:
        self.wall += minutes * MINUTE


def tariff_config(tmp_path, port, device, direction, zone_from, zone_to, **presence):
    """A tariff gate of site "t" on simulated drivers, data in ``tmp_path / device``."""
    return DeviceConfig.model_validate(
        {
            "device": {
                "id": device,
                "site": SITE_ID,
                "role": "gate",
                "data_dir": str(tmp_path / device),
                "run_dir": str(tmp_path / "run"),
            },
            "mqtt": {"port": port, "reconnect_min": 0.05, "reconnect_max": 0.5},
            "outbox": {"ack_timeout": 0.5, "backoff_max": 1.0},
            "gate": {
                "admission": "tariffs",
                "direction": direction,
                "zone_from": zone_from,
                "zone_to": zone_to,
                "debounce": 1.0,
                "relay_pulse": 0.2,
            },
            "presence": presence,
            "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim"},
        }
    )


class Central:
    """A plain MQTT client where central stands: keeps every message it sees (nothing is
    dropped while a test waits for another), publishes statuses, pages and passages."""

    def __init__(self, port: int) -> None:
        self.topics = protocol.Topics(SITE_ID)
        self.port = port
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.c = self._connect()

    def _connect(self) -> paho.Client:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="central-stand-in", protocol=paho.MQTTv5
        )
        c.on_message = lambda c, u, m: self._inbox.put((m.topic, bytes(m.payload)))
        subscribed = threading.Event()
        c.on_subscribe = lambda *args: subscribed.set()
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        c.subscribe(f"{self.topics.base}/#", qos=1)
        assert subscribed.wait(5)
        return c

    def reconnect(self) -> None:
        """Connect afresh (after the broker restarted and forgot everything)."""
        self.close()
        self.c = self._connect()

    def publish(self, topic: str, message: protocol.Message, retain: bool = False) -> None:
        self.c.publish(topic, protocol.encode(message), qos=1, retain=retain).wait_for_publish(5)

    def status(self, state: str, epoch: int = 1) -> None:
        status = protocol.CentralStatus(state=state, epoch=epoch, ts=0.0)
        self.publish(self.topics.central_status, status, retain=True)

    def wait(self, topic: str, start: int = 0, timeout: float = 5.0) -> tuple[int, bytes]:
        """The first message on ``topic`` at or after index ``start`` of :attr:`seen`."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.seen):
                if self.seen[i][0] == topic:
                    return i, self.seen[i][1]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nothing on {topic} within {timeout} s")
            try:
                self.seen.append(self._inbox.get(timeout=left))
            except queue.Empty:
                continue

    def mark(self) -> int:
        """Index of the next message to arrive (what came before is in :attr:`seen`)."""
        while True:
            try:
                self.seen.append(self._inbox.get_nowait())
            except queue.Empty:
                return len(self.seen)

    def seed(self, device: str, changes: list[protocol.CatalogChange]) -> None:
        """Answer the gate's first catalog request with ``changes`` (versions 1..n)."""
        self.wait(self.topics.catalog_request(device))
        self.page(device, 0, changes)

    def page(self, device: str, from_version: int, changes: list[protocol.CatalogChange]):
        to = changes[-1].version if changes else from_version
        page = protocol.CatalogPage(
            from_version=from_version, to_version=to, head=to, changes=changes
        )
        self.publish(self.topics.catalog_page(device), page)

    def event(self, device: str, match, timeout: float = 5.0) -> protocol.Event:
        """The first event from ``device`` for which ``match(event)`` holds (a re-sent
        batch repeats events already seen; the first copy is returned)."""
        i = 0
        deadline = time.monotonic() + timeout
        while True:
            i, payload = self.wait(self.topics.events(device), i, deadline - time.monotonic())
            for event in protocol.decode(protocol.EventBatch, payload).events:
                if match(event):
                    return event
            i += 1

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
