"""Tariff gates (``admission = "tariffs"``) as whole runtimes against a real Mosquitto.

A plain MQTT client stands where central stands: it publishes central's retained status,
catalog pages and snapshots, and reads the events. The gates' wall clock stands still
until a test moves it (:class:`tariff_rig.StepClock`), so stays and offline minutes are
exact.
"""

import json
import threading
import uuid
from dataclasses import dataclass

import pytest
from tariff_rig import (
    OTHER,
    T0,
    UID,
    Central,
    StepClock,
    catalog,
    payment_change,
    site,
    tariff_config,
)

from controller.rules.serial import load_decision, load_logged_input
from controller.runtime import DeviceRuntime
from controller.store import DeviceStore
from drivers.registry import DriverSet, build_drivers
from entrada import protocol
from entrada.site import wait_until

ENTRANCE = ("in", "", "facility")
EXIT = ("out", "facility", "")


@dataclass
class Gate:
    rt: DeviceRuntime
    drivers: DriverSet
    thread: threading.Thread

    def tap(self, uid: str) -> str:
        """Tap ``uid`` and return the outcome once the gate has decided."""
        counters = self.rt.counters
        before = dict(counters.outcomes)
        self.rt.on_uid(uid)
        assert wait_until(lambda: sum(counters.outcomes.values()) == sum(before.values()) + 1, 5)
        after = dict(counters.outcomes)
        (outcome,) = [k for k, n in after.items() if n != before.get(k, 0)]
        return outcome

    def shown(self, outcome: str) -> dict:
        """What a screen showed with the last signal of ``outcome``."""
        signals = self.drivers.indicator.signals
        index = len(signals) - 1 - signals[::-1].index(outcome)
        return self.drivers.indicator.details[index]

    def stop(self) -> None:
        self.rt.request_stop("test over")
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def clock():
    return StepClock()


@pytest.fixture
def start(tmp_path, clock):
    """``start(device, port, (direction, zone_from, zone_to))`` runs a tariff gate."""
    started = []

    def start_gate(device, port, where=ENTRANCE):
        cfg = tariff_config(tmp_path, port, device, *where)
        drivers = build_drivers(cfg.drivers)
        store = DeviceStore(cfg.device.data_dir / "device.db")
        rt = DeviceRuntime(cfg, drivers, store, clock=clock)
        gate = Gate(rt, drivers, threading.Thread(target=rt.run, daemon=True))
        gate.thread.start()
        started.append(gate)
        return gate

    yield start_gate
    for gate in started:
        if gate.thread.is_alive():
            gate.stop()


@pytest.fixture
def central(broker):
    c = Central(broker.port)
    c.status("online")
    yield c
    c.close()


def seed(central: Central, gate: Gate, tickets: dict[str, str]) -> None:
    """Send the gate its first catalog page and wait until its rules are in force."""
    changes = catalog(tickets)
    central.seed(gate.rt.device_id, changes)
    assert wait_until(
        lambda: gate.rt.store.catalog_version == len(changes) and gate.rt.site is not None, 5
    )


def entered(at: float, gate: str = "gate-0", tariff: str = "timed-2h") -> protocol.PeerPassage:
    """A peer's record of UID coming into the facility at ``at``."""
    return protocol.PeerPassage(
        id=uuid.uuid4().hex,
        uid=UID,
        at=at,
        zone_from=None,
        zone_to="facility",
        direction="in",
        entitlement_id=f"e-{UID}",
        tariff_id=tariff,
        consumed=True,
        gate=gate,
    )


def test_an_entry_is_granted_and_its_event_replays_to_the_same_decision(start, broker, central):
    gate = start("gate-1", broker.port)
    seed(central, gate, {UID: "timed-2h"})

    assert gate.tap(UID) == "granted"

    event = central.event("gate-1", lambda e: e.kind == "gate.passage")
    data = json.loads(json.dumps(event.data))
    assert data["passage"]["uid"] == UID and data["passage"]["consumed"] is True
    rules = site(data["input"]["catalog_version"])  # the rules as the gate parsed them
    replayed = load_logged_input(data["input"], rules).decide()
    assert replayed == load_decision(data["decision"])
    assert gate.drivers.relay.pulses == [0.2]


def test_an_exit_owing_overtime_is_refused_until_paid(start, broker, central, clock):
    gate = start("gate-2", broker.port, EXIT)
    seed(central, gate, {UID: "timed-2h"})  # catalog v3
    central.publish(
        central.topics.presence("gate-0"),
        protocol.PresenceBatch(device="gate-0", passages=[entered(T0)]),
    )
    assert wait_until(lambda: gate.rt.presence.heard == 1, 5)
    clock.advance(140)  # 20 minutes over: two started quarters at 5.00

    refused = gate.tap(UID)
    central.page("gate-2", 3, [payment_change(4, 1000, clock.wall)])
    assert wait_until(lambda: gate.rt.store.catalog_version == 4, 5)
    clock.advance(1)
    paid = gate.tap(UID)

    assert (refused, paid) == ("denied.owing", "granted")
    assert gate.shown("denied.owing")["params"]["due_minor"] == 1000
    assert gate.drivers.relay.pulses == [0.2]
    counts = gate.rt.snapshot()
    assert (counts["exits_refused_owing"], counts["charged_minor"]) == (1, 1000)


def test_minutes_offline_is_none_in_contact_and_counts_without_central(start, broker, central):
    gate = start("gate-1", broker.port)
    rt, clock = gate.rt, gate.rt.clock
    assert wait_until(lambda: rt.minutes_offline(clock.time()) is None, 5)
    clock.advance(30)
    assert rt.minutes_offline(clock.time()) is None

    central.status("offline")
    assert wait_until(lambda: rt.minutes_offline(clock.time()) == 0.0, 5)
    clock.advance(12)

    assert rt.minutes_offline(clock.time()) == 12.0
    central.status("online", epoch=2)
    assert wait_until(lambda: rt.minutes_offline(clock.time()) is None, 5)


@pytest.mark.parametrize(
    ("tariff", "online", "offline"),
    [
        ("timed-2h", "granted", "granted.offline"),  # admits offline from minute 0
        ("online-only", "granted", "denied.offline"),  # after_minutes 0, mode deny
    ],
)
def test_a_tariffs_offline_policy_applies_once_central_is_gone(
    start, broker, central, clock, tariff, online, offline
):
    gate = start("gate-1", broker.port)
    seed(central, gate, {UID: tariff, OTHER: tariff})
    assert wait_until(lambda: gate.rt.minutes_offline(clock.time()) is None, 5)
    assert gate.tap(UID) == online

    central.status("offline")
    assert wait_until(lambda: gate.rt.minutes_offline(clock.time()) is not None, 5)
    clock.advance(1)

    assert gate.tap(OTHER) == offline


@pytest.mark.parametrize(
    ("second", "minutes_later", "outcome"),
    [
        pytest.param(EXIT, 140, "denied.owing", id="exit-owes-overtime-since-the-peers-entry"),
        pytest.param(ENTRANCE, 1, "denied.passback", id="second-entrance-passback"),
        pytest.param(ENTRANCE, 10, "denied.pass_used_up", id="second-entrance-entry-counted"),
    ],
)
def test_two_gates_decide_from_each_others_passages(
    start, broker, central, clock, second, minutes_later, outcome
):
    gate1 = start("gate-1", broker.port, ENTRANCE)
    gate2 = start("gate-2", broker.port, second)
    for gate in (gate1, gate2):
        seed(central, gate, {UID: "timed-2h"})

    assert gate1.tap(UID) == "granted"
    assert wait_until(lambda: gate2.rt.presence.heard == 1, 5)
    clock.advance(minutes_later)

    assert gate2.tap(UID) == outcome


def test_a_passage_made_while_cut_off_is_shared_again_once_back(start, broker, central, clock):
    gate1 = start("gate-1", broker.port, ENTRANCE)
    gate2 = start("gate-2", broker.port, EXIT)
    for gate in (gate1, gate2):
        seed(central, gate, {UID: "timed-2h"})
    broker.kill()  # no persistence: sessions and retained messages are gone
    assert wait_until(lambda: not gate1.rt.link.connected, 5)
    assert gate1.tap(UID).startswith("granted")
    gate1.stop()

    broker.start()
    central.reconnect()
    central.status("online")
    assert wait_until(lambda: gate2.rt.minutes_offline(clock.time()) is None, 5)  # subscribed
    start("gate-1", broker.port, ENTRANCE)  # same store: shares its last day again

    assert wait_until(lambda: gate2.rt.presence.heard == 1, 5)
    clock.advance(140)
    assert gate2.tap(UID) == "denied.owing"


def test_a_snapshot_replaces_the_catalog(start, broker, central):
    gate = start("gate-1", broker.port)
    seed(central, gate, {UID: "timed-2h"})
    rows = catalog({OTHER: "timed-2h"})  # rules, OTHER's wristband and ticket; UID is gone
    first = protocol.CatalogSnapshot(as_of=10, head=10, after=None, next="k1", rows=rows[:2])
    last = protocol.CatalogSnapshot(as_of=10, head=10, after="k1", next=None, rows=rows[2:])

    mark = central.mark()
    central.publish(central.topics.catalog_page("gate-1"), first)
    _i, payload = central.wait(central.topics.catalog_request("gate-1"), mark)
    asked = protocol.decode(protocol.CatalogRequest, payload)
    central.publish(central.topics.catalog_page("gate-1"), last)
    assert wait_until(lambda: gate.rt.store.catalog_version == 10, 5)

    assert asked.snapshot == protocol.SnapshotCursor(as_of=10, after="k1")
    assert (gate.tap(UID), gate.tap(OTHER)) == ("denied.unknown", "granted")


def test_rules_that_do_not_name_the_gates_zone_are_a_fault_and_refuse_everyone(
    start, broker, central
):
    gate = start("gate-1", broker.port, ("in", "", "spa"))
    central.seed("gate-1", catalog({UID: "timed-2h"}))
    assert wait_until(lambda: gate.rt.store.catalog_version == 3, 5)

    assert gate.tap(UID) == "denied.no_rules"
    assert "fault.rules_unusable" in gate.rt.faults
    assert gate.drivers.relay.pulses == []
