"""Signed configs and technicians' commands end to end: a real Mosquitto, a gate on
simulated drivers run by the supervisor (on a thread: signals are only installed by
``entrada device``), and a fake central: :class:`~central.devconfig.DesiredConfigs` on a
SQLite file behind a paho client that publishes the signed desired document retained and
collects what the device reports. Commands go through ``entrada tech``'s own sender."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from config_rig import SITE, on_broker, supervised, write_gate_config
from paho.mqtt.enums import CallbackAPIVersion

from central.devconfig import DesiredConfigs
from controller.config_apply import ConfigCode
from controller.supervisor import Supervisor
from entrada import cli_tech, protocol, signing
from entrada.broker import PrivateBroker
from entrada.logring import LogRing
from entrada.settings_common import MqttSection
from entrada.site import wait_until
from entrada.tcp_proxy import TcpProxy

pytestmark = pytest.mark.scenario

TOPICS = protocol.Topics(SITE)
TIMEOUT = 15.0
MISSING_PORT = "/dev/entrada-no-such-reader"


class FakeCentral:
    """Central's config side: layered desired configs, signed and published retained;
    reports and statuses collected from paho's thread into queues."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker, private_key_path: Path) -> None:
        self.configs = DesiredConfigs(tmp_path / "central.sqlite")
        self.configs.add_device("gate-1", "gate", now=time.time())
        self.key = signing.load_private_key(private_key_path)
        self.reports: queue.Queue[protocol.ConfigReported] = queue.Queue()
        self.online_epochs: list[int] = []
        self.statuses: list[protocol.Status] = []
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="central-fake", protocol=paho.MQTTv5
        )
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(
            [(TOPICS.config_reported("gate-1"), 1), (TOPICS.status("gate-1"), 1)]
        )
        self.client.on_subscribe = lambda c, u, m, r, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(TIMEOUT)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/config/reported"):
            self.reports.put(protocol.decode(protocol.ConfigReported, msg.payload))
        elif msg.payload:
            status = protocol.decode(protocol.Status, msg.payload)
            self.statuses.append(status)
            if status.state == "online":
                self.online_epochs.append(status.epoch)

    def change(self, *pairs: str) -> int:
        """A technician's change on the device layer; the new version."""
        return self.configs.set(
            "gate-1", list(pairs), self.configs.version("gate-1"), now=time.time()
        ).version

    def publish(self) -> int:
        message = self.configs.desired_message("gate-1", self.key)
        self.publish_raw(protocol.encode(message))
        return message.version

    def publish_raw(self, payload: bytes) -> None:
        topic = TOPICS.config_desired("gate-1")
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(TIMEOUT)

    def signed(self, document: dict[str, Any], version: int, device: str = "gate-1") -> bytes:
        payload = signing.config_payload(device, version, document)
        return protocol.encode(
            protocol.ConfigDesired(
                device=device,
                version=version,
                document=document,
                signature=signing.sign(self.key, payload),
            )
        )

    def report(self, version: int, state: str) -> protocol.ConfigReported:
        """The next report of ``version`` in ``state`` (others before it are skipped)."""
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self.reports.get(timeout=left)
            except queue.Empty:
                break
            if (got.version, got.state) == (version, state):
                return got
        raise AssertionError(f"no report of version {version} {state}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.configs.close()


class Rig:
    def __init__(self, tmp_path: Path, broker: PrivateBroker) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        private, public = signing.generate_keypair(tmp_path / "keys")
        self.public_key = public
        self.central = FakeCentral(tmp_path, broker, private)
        self.ring = LogRing(200, fmt="%(levelname)s %(name)s: %(message)s")
        self.tech = cli_tech.TechLink(MqttSection(host=broker.host, port=broker.port), "tech")
        self.tech.open()

    @contextmanager
    def device(
        self, self_check_seconds: float = 0.5, port: int | None = None
    ) -> Iterator[Supervisor]:
        config = write_gate_config(
            self.tmp_path, port or self.broker.port, "hunter2-mqtt-secret", self.public_key
        )
        sup = Supervisor(config, logs=self.ring.tail, self_check_seconds=self_check_seconds)
        with supervised(sup, self.online, TIMEOUT):
            yield sup

    def online(self, sup: Supervisor, generation: int | None = None) -> bool:
        """The current runtime's birth reached central (its subscriptions are in place)."""

        def up() -> bool:
            rt = sup.runtime
            if rt is None or not rt.online or (generation and sup.generation != generation):
                return False
            return rt.link.epoch in self.central.online_epochs

        return wait_until(up, TIMEOUT)

    def command(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        ident: str | None = None,
        expires_in: float = 30.0,
    ) -> protocol.CommandResponse:
        request = protocol.CommandRequest(
            id=ident or cli_tech.new_command_id(),
            name=name,
            args=args or {},
            expires=time.time() + expires_in,
        )
        response = cli_tech.send_command(
            self.tech, TOPICS, "gate-1", request, expiry=30.0, timeout=TIMEOUT
        )
        assert response is not None, f"no answer to {name}"
        return response

    def outbox_kinds(self) -> list[str]:
        path = self.tmp_path / "gate" / "device.db"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [k for (k,) in conn.execute("SELECT kind FROM outbox ORDER BY seq")]
        finally:
            conn.close()

    def close(self) -> None:
        self.tech.close()
        self.central.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with on_broker(tmp_path, Rig) as r:
        yield r


def relay(sup: Supervisor) -> Any:
    rt = sup.runtime
    assert rt is not None
    return rt.drivers.relay  # type: ignore[attr-defined]


def config_in_status(rig: Rig, version: int) -> bool:
    """A birth of the device says it runs config ``version``."""

    def seen() -> bool:
        return any(
            s.state == "online" and s.versions is not None and s.versions.config == version
            for s in list(rig.central.statuses)
        )

    return wait_until(seen, TIMEOUT)


# ------------------------------------------------------------------ configs


def test_a_new_config_runs_in_a_new_runtime_and_is_reported_applied(rig):
    with rig.device() as sup:
        version = rig.central.change("gate.relay_pulse=0.7")
        rig.central.publish()

        applied = rig.central.report(version, "applied")
        assert rig.online(sup, generation=2)
        answer = rig.command("open-gate")

        assert applied.code == ConfigCode.APPLIED
        assert answer.ok and answer.result["seconds"] == 0.7
        assert relay(sup).pulses == [0.7]
        assert config_in_status(rig, version)


def test_a_config_whose_reader_does_not_answer_is_rolled_back(rig):
    with rig.device() as sup:
        version = rig.central.change("drivers.rfid=serial", f"drivers.serial.port={MISSING_PORT}")
        rig.central.publish()

        rolled = rig.central.report(version, "rolled_back")
        assert rig.online(sup, generation=3)
        runtime = sup.runtime

        assert rolled.code == ConfigCode.ROLLED_BACK_SELF_CHECK
        assert rolled.reason == "the serial reader did not start"
        assert runtime.cfg.drivers.rfid == "sim"  # type: ignore[union-attr]
        assert rig.command("open-gate").result["seconds"] == 0.2  # the old config runs

        # after a restart the retained version is reported again, not tried again
        assert rig.command("restart").ok
        again = rig.central.report(version, "rolled_back")
        assert rig.online(sup, generation=4)
        assert again.code == ConfigCode.ROLLED_BACK_SELF_CHECK
        assert sup.generation == 4


def test_refused_configs_change_nothing(rig):
    with rig.device() as sup:
        same = rig.central.change("gate.relay_pulse=0.2")  # what runs already
        rig.central.publish()
        assert rig.central.report(same, "applied").code == ConfigCode.APPLIED
        central = rig.central
        cases = [
            (
                protocol.encode(protocol.ConfigDesired(device="gate-1", version=5, document={})),
                5,
                ConfigCode.REJECTED_UNSIGNED,
            ),
            (central.signed({}, 6, device="gate-2"), 6, ConfigCode.REJECTED_WRONG_DEVICE),
            (central.signed({}, 1), 1, ConfigCode.REJECTED_NOT_NEWER),
            (central.signed({"gate": {"relay_pulse": 100}}, 7), 7, ConfigCode.REJECTED_SCHEMA),
        ]
        for payload, version, code in cases:
            central.publish_raw(payload)
            rejected = central.report(version, "rejected")
            assert rejected.code == code, rejected

        assert sup.generation == 1
        assert rig.command("open-gate").result["seconds"] == 0.2
        assert config_in_status(rig, same)


def test_a_device_that_was_offline_converges_when_it_reconnects(rig):
    proxy = TcpProxy(rig.broker.port).start()
    try:
        with rig.device(port=proxy.port) as sup:
            proxy.cut()
            assert wait_until(lambda: sup.runtime is not None and not sup.runtime.online, TIMEOUT)
            version = rig.central.change("gate.relay_pulse=0.4")
            rig.central.publish()
            assert sup.generation == 1
            proxy.restore()

            assert rig.central.report(version, "applied").code == ConfigCode.APPLIED
            assert rig.online(sup, generation=2)
            assert rig.command("open-gate").result["seconds"] == 0.4
    finally:
        proxy.stop()


def test_a_restart_in_the_middle_of_an_apply_rolls_it_back(rig):
    with rig.device(self_check_seconds=60.0) as sup:
        version = rig.central.change("gate.relay_pulse=0.7")
        rig.central.publish()
        assert rig.online(sup, generation=2)  # staged, on trial when the device stops

    with rig.device() as sup:
        rolled = rig.central.report(version, "rolled_back")

        assert rolled.code == ConfigCode.ROLLED_BACK_INTERRUPTED
        assert sup.generation == 1
        assert rig.command("open-gate").result["seconds"] == 0.2


# ----------------------------------------------------------------- commands


def test_open_gate_runs_once_even_when_redelivered(rig):
    with rig.device() as sup:
        first = rig.command("open-gate", {"seconds": 1.5}, ident="tech-open-0001")
        again = rig.command("open-gate", {"seconds": 1.5}, ident="tech-open-0001")

        assert (first.ok, first.duplicate, again.ok, again.duplicate) == (True, False, True, True)
        assert again.result == first.result
        assert relay(sup).pulses == [1.5]
        assert rig.outbox_kinds().count("gate.remote_open") == 1


def test_an_expired_command_never_runs(rig):
    with rig.device() as sup:
        answer = rig.command("open-gate", expires_in=-5.0)

        assert (answer.ok, answer.code) == (False, "reject.expired")
        assert relay(sup).pulses == []
        assert "gate.remote_open" not in rig.outbox_kinds()


def test_identify_diagnostics_and_resync(rig):
    with rig.device() as sup:
        identify = rig.command("identify", {"seconds": 3})
        diagnostics = rig.command("diagnostics")
        resync = rig.command("resync")

        assert identify.ok
        assert sup.runtime.drivers.indicator.signals[-1] == "identify"  # type: ignore[union-attr]
        assert diagnostics.ok and diagnostics.result["role"] == "gate"
        assert diagnostics.result["snapshot"]["device"] == "gate-1"
        assert diagnostics.result["config"]["version"] == 0
        assert resync.ok and resync.result == {"catalog_version": 0}


def test_restart_answers_first_then_builds_a_new_runtime(rig):
    with rig.device() as sup:
        first = sup.runtime
        answer = rig.command("restart")

        assert answer.ok
        assert rig.online(sup, generation=2)
        assert sup.runtime is not first
        assert first.drivers.relay.closed  # type: ignore[union-attr]


def test_logs_come_back_without_secrets(rig):
    root = logging.getLogger()
    root.addHandler(rig.ring)
    try:
        with rig.device():
            logging.getLogger("controller.test").warning("login with password=hunter2-log")
            answer = rig.command("logs", {"lines": 200})
    finally:
        root.removeHandler(rig.ring)

    lines = answer.result["lines"]
    assert answer.ok and lines
    assert any("password=********" in line for line in lines)
    assert not any("hunter2" in line for line in lines)
