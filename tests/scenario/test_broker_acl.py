"""The generated broker config on a real Mosquitto: who may read and write what.

One broker for the module, started as our user from ``entrada broker-config``'s files,
with a TLS listener and the loopback plain one (central uses it). Four devices (two
gates, a dispenser, a display) and central, a staff terminal and a technician connect
with the passwords from their bundles. Each subscribes a set of filters (wildcards and
``$SYS/#`` included, each with an MQTT 5 subscription identifier), then:

- read: central publishes once to every topic of the site; what each client receives, and
  through which filter, must be exactly what the topic map lets it read;
- write: every client publishes QoS 1 to every topic; the PUBACK reason code says whether
  the broker took it, and central, watching the whole site, must see exactly those.

The expectations come from an oracle written from the topic map (not from the ACL the
code generates), so a wrong ACL cannot agree with itself.
"""

from __future__ import annotations

import getpass
import signal
import socket
import ssl
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.settings import DeviceConfig
from entrada import brokerconf, config, provision
from entrada.broker import find_mosquitto, free_port, wait_for_port
from entrada.mqtt import LinkUp, MqttLink

pytestmark = pytest.mark.scenario

SITE = "pool"
HOST = "localhost"
TIMEOUT = 10.0
DEVICES = {"gate-1": "gate", "gate-2": "gate", "disp-1": "dispenser", "board-1": "display"}
SERVICES = {"central": "central", "counter-1": "staff", "tech-1": "technician"}
ACCOUNTS = {**DEVICES, **SERVICES}
#: Devices outside the matrix, for the connection tests (their sessions come and go).
SPARE = {"gate-3": "gate", "disp-2": "dispenser"}

# ------------------------------------------------------------------- the oracle

#: A device's own leaves, from the topic map.
OWN = {
    "status": {"read", "write"},
    "events": {"write"},
    "ack": {"read"},
    "config/desired": {"read"},
    "config/reported": {"write"},
    "cmd/req": {"read"},
    "cmd/res": {"write"},
    "catalog/req": {"write"},
    "catalog/page": {"read"},
    "queue/req": {"write"},
    "queue/res": {"read"},
    "logs": {"write"},
}
LEAVES = [*OWN, "unknown", "config/desired/extra"]


def may(account: str, topic: str, access: str) -> bool:
    kind = ACCOUNTS[account]
    if topic.startswith("$SYS/"):
        return kind == "central" and access == "read"
    parts = topic.split("/")
    if parts[:2] != ["entrada", SITE]:
        return False
    rest = parts[2:]
    path = "/".join(rest)
    if rest[:2] == ["device", account]:  # its own subtree; a service has none
        return account in DEVICES and access in OWN.get("/".join(rest[2:]), set())
    if kind == "central":
        return True
    if kind == "technician":
        is_cmd = len(rest) == 4 and rest[0] == "device" and rest[2:] == ["cmd", "req"]
        return access == "read" or is_cmd
    if kind == "staff":
        if access == "write":
            return path == "queue/op/req"
        return path == "queue/board" or rest[:4] == ["queue", "op", "res", account]
    if kind == "gate":
        if access == "write":
            return path == f"presence/{account}"
        return path in ("catalog/head", "central/status") or (
            len(rest) == 2 and rest[0] == "presence"
        )
    return access == "read" and path in ("queue/board", "central/status")


def site_topic(path: str) -> str:
    return f"entrada/{SITE}/{path}"


TOPICS = (
    [site_topic(f"device/{name}/{leaf}") for name in ACCOUNTS for leaf in LEAVES]
    + [
        site_topic(path)
        for path in (
            "catalog/head",
            "catalog/other",
            "central/status",
            "central/other",
            "queue/board",
            "queue/board/extra",
            *(f"presence/{name}" for name in ACCOUNTS),
            "presence/gate-1/extra",
            "queue/op/req",
            "queue/op/req/extra",
            "queue/op/res/counter-1",
            "queue/op/res/counter-1/r1",
            "queue/op/res/counter-2/r1",
            "unknown",
            "device",
        )
    ]
    + [
        "entrada/other-site/device/gate-1/events",
        "entrada/other-site/catalog/head",
        f"entrada/{SITE}",
        "entrada",
        "foo/bar",
    ]
)
FILTERS = [
    "#",
    "entrada/#",
    f"entrada/{SITE}/#",
    f"entrada/{SITE}/device/+/config/desired",
    f"entrada/{SITE}/device/+/#",
    "+/+/presence/+",
    f"entrada/{SITE}/queue/#",
    "$SYS/#",
]
#: Central publishes every topic it may write; the others cannot be written by anyone.
READ_TOPICS = [t for t in TOPICS if may("central", t, "write")]


def fence_topic(account: str) -> str:
    """A topic ``account`` may read, that central may write and ``#`` matches."""
    if account in DEVICES:
        return site_topic(f"device/{account}/ack")
    if SERVICES[account] == "staff":
        return site_topic(f"queue/op/res/{account}/fence")
    return site_topic("fence")


# ------------------------------------------------------------------ the broker


@dataclass
class Broker:
    site_dir: Path
    files: brokerconf.BrokerFiles
    tls_port: int
    plain_port: int
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def ca(self) -> Path:
        return self.site_dir / "ca" / "ca.crt"

    def secret(self, name: str) -> str:
        """The account's password, from its bundle."""
        if name in SERVICES:
            path = self.site_dir / "services" / name / "mqtt.toml"
        else:
            path = self.site_dir / "devices" / name / "device.toml"
        return str(tomllib.loads(path.read_text())["mqtt"]["password"])

    def probe(self, name: str, secret: str | None = "", tls: bool = True, **kw: Any) -> Probe:
        """A client for ``name`` with its own password (``secret=""``), TLS with the CA."""
        secret = self.secret(name) if secret == "" else secret
        return make_probe(name, secret, ca=self.ca if tls else None, **kw)

    def regenerate_and_reload(self) -> None:
        brokerconf.write_broker_config(
            self.site_dir, self.files.out_dir, host_for_dir(self.files.out_dir)
        )
        self.proc.send_signal(signal.SIGHUP)


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Broker]:
    binary = find_mosquitto()
    root = tmp_path_factory.mktemp("acl")
    tls_port, plain_port = free_port(), free_port()
    site_dir = root / "site"
    provision.init_site(site_dir, SITE, [HOST], tls_port=tls_port, plain_port=plain_port)
    for name, role in {**DEVICES, **SPARE}.items():
        provision.provision_device(site_dir, name, role)
    for name, kind in SERVICES.items():
        provision.add_service_account(site_dir, name, kind)
    out = root / "broker"
    files = brokerconf.write_broker_config(site_dir, out, host_for_dir(out))
    (out / "data").mkdir()
    log = root / "mosquitto.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [binary, "-c", str(files.conf)],
            stdout=fh,
            stderr=fh,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    b = Broker(site_dir, files, tls_port, plain_port, log, proc)
    try:
        for port in (tls_port, plain_port):
            assert wait_for_port("127.0.0.1", port, TIMEOUT), log.read_text()
        yield b
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def host_for_dir(out: Path) -> brokerconf.BrokerHost:
    return brokerconf.BrokerHost(
        files_dir=out, persistence_dir=out / "data", bind="127.0.0.1", user=getpass.getuser()
    )


# -------------------------------------------------------------------- clients


@dataclass
class Received:
    topic: str
    payload: bytes
    sub_ids: tuple[int, ...]


@dataclass
class Probe:
    """A paho client that records what it is told: CONNACK, SUBACKs, PUBACKs, messages."""

    name: str
    client: paho.Client
    cond: threading.Condition = field(default_factory=threading.Condition)
    connack: Any = None
    disconnected: Any = None
    subacks: dict[int, list[Any]] = field(default_factory=dict)
    pubacks: dict[int, Any] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)

    def wait(self, predicate: Any, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, TIMEOUT), f"{self.name}: no {what}"

    def got_payload(self, payload: bytes) -> bool:
        return any(m.payload == payload for m in self.messages)


def make_probe(
    name: str,
    secret: str | None,
    *,
    ca: Path | None,
    client_id: str | None = None,
    will_topic: str | None = None,
) -> Probe:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or name, protocol=paho.MQTTv5
    )
    probe = Probe(name, client)
    if secret is not None:
        client.username_pw_set(name, secret)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    if will_topic:
        client.will_set(will_topic, b"will", qos=1)
    client.max_inflight_messages_set(100)

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        with probe.cond:
            probe.connack = reason
            probe.cond.notify_all()

    def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        with probe.cond:
            probe.disconnected = reason
            probe.cond.notify_all()

    def on_subscribe(c: Any, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
        with probe.cond:
            probe.subacks[mid] = reasons
            probe.cond.notify_all()

    def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        with probe.cond:
            probe.pubacks[mid] = reason
            probe.cond.notify_all()

    def on_message(c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        ids = getattr(msg.properties, "SubscriptionIdentifier", None) or []
        with probe.cond:
            probe.messages.append(Received(msg.topic, bytes(msg.payload), tuple(ids)))
            probe.cond.notify_all()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    return probe


def connect(probe: Probe, port: int) -> Probe:
    probe.client.connect("127.0.0.1", port, keepalive=30)
    probe.client.loop_start()
    probe.wait(lambda: probe.connack is not None or probe.disconnected is not None, "CONNACK")
    return probe


def stop(probe: Probe) -> None:
    probe.client.disconnect()
    probe.client.loop_stop()


@pytest.fixture(scope="module")
def probes(broker) -> Iterator[dict[str, Probe]]:
    made = {}
    for name in ACCOUNTS:
        plain = name == "central"  # central on the loopback plain listener, the rest TLS
        port = broker.plain_port if plain else broker.tls_port
        probe = broker.probe(name, tls=not plain)
        probe.client.connect("127.0.0.1", port, keepalive=30)
        probe.client.loop_start()
        made[name] = probe
    try:
        for probe in made.values():
            probe.wait(lambda p=probe: p.connack is not None, "CONNACK")
            assert not probe.connack.is_failure, (probe.name, str(probe.connack))
            mids = []
            for i, topic in enumerate(FILTERS, start=1):
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = i
                _, mid = probe.client.subscribe(topic, qos=1, properties=props)
                mids.append(mid)
            probe.wait(lambda p=probe, m=mids: all(x in p.subacks for x in m), "SUBACK")
        yield made
    finally:
        for probe in made.values():
            stop(probe)


def matching(topic: str) -> set[int]:
    return {i for i, f in enumerate(FILTERS, start=1) if paho.topic_matches_sub(f, topic)}


def fence(probes: dict[str, Probe], tag: str) -> None:
    """Central publishes a fence to each client after everything else; Mosquitto keeps
    a client's deliveries in order, so once the fence is in, everything before it is."""
    central = probes["central"]
    for name in probes:
        central.client.publish(fence_topic(name), f"fence:{tag}:{name}".encode(), qos=1)
    for name, probe in probes.items():
        want = f"fence:{tag}:{name}".encode()
        probe.wait(lambda p=probe, w=want: p.got_payload(w), f"fence {tag}")


# ----------------------------------------------------------------- read matrix


@pytest.fixture(scope="module")
def read_results(probes) -> dict[str, dict[str, set[int]]]:
    payload = b"read-phase"
    for topic in READ_TOPICS:
        probes["central"].client.publish(topic, payload, qos=1)
    fence(probes, "read")
    results: dict[str, dict[str, set[int]]] = {}
    for name, probe in probes.items():
        with probe.cond:
            got: dict[str, set[int]] = {}
            for m in probe.messages:
                if m.payload == payload:
                    got.setdefault(m.topic, set()).update(m.sub_ids)
        results[name] = got
    return results


def expected_reads(name: str) -> dict[str, set[int]]:
    want = {t: matching(t) for t in READ_TOPICS if may(name, t, "read")}
    return {t: ids for t, ids in want.items() if ids}


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_each_account_receives_exactly_what_it_may_read(read_results, name):
    assert read_results[name] == expected_reads(name)


def test_no_device_reads_into_another_devices_subtree(read_results):
    for name in DEVICES:
        foreign = [
            t
            for t in read_results[name]
            if "/device/" in t and not t.startswith(site_topic(f"device/{name}/"))
        ]
        assert foreign == [], name


def test_a_device_wildcard_on_every_config_yields_only_its_own(read_results):
    sub_id = FILTERS.index(f"entrada/{SITE}/device/+/config/desired") + 1
    for name in DEVICES:
        via = [t for t, ids in read_results[name].items() if sub_id in ids]
        assert via == [site_topic(f"device/{name}/config/desired")]


def test_sys_topics_reach_central_only(probes, read_results):
    central = probes["central"]
    central.wait(lambda: any(m.topic.startswith("$SYS/") for m in central.messages), "$SYS")
    for name, probe in probes.items():
        if name != "central":
            with probe.cond:
                assert not [m.topic for m in probe.messages if m.topic.startswith("$SYS/")]


# ---------------------------------------------------------------- write matrix


@pytest.fixture(scope="module")
def write_results(probes, read_results) -> dict[str, dict[str, bool]]:
    """Every client publishes QoS 1 to every topic: accepted (PUBACK < 0x80) or not."""
    sent: dict[str, dict[int, str]] = {}
    for name, probe in probes.items():
        payload = f"write:{name}".encode()
        sent[name] = {}
        for topic in TOPICS:
            info = probe.client.publish(topic, payload, qos=1)
            sent[name][info.mid] = topic
    results: dict[str, dict[str, bool]] = {}
    for name, probe in probes.items():
        probe.wait(lambda p=probe, m=sent[name]: all(x in p.pubacks for x in m), "PUBACKs")
        with probe.cond:
            results[name] = {
                topic: not probe.pubacks[mid].is_failure for mid, topic in sent[name].items()
            }
    return results


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_broker_accepts_exactly_what_each_account_may_write(write_results, name):
    refused_wrongly = [
        t for t, ok in write_results[name].items() if may(name, t, "write") and not ok
    ]
    allowed_wrongly = [
        t for t, ok in write_results[name].items() if ok and not may(name, t, "write")
    ]
    assert (refused_wrongly, allowed_wrongly) == ([], [])


def test_central_sees_exactly_the_accepted_writes(probes, write_results):
    central = probes["central"]
    fence({"central": central}, "write")
    with central.cond:
        seen = {
            (m.payload.decode().split(":", 1)[1], m.topic)
            for m in central.messages
            if m.payload.startswith(b"write:")
        }
    accepted = {
        (name, t)
        for name, res in write_results.items()
        for t, ok in res.items()
        if ok and may("central", t, "read")
    }
    assert seen == accepted


def test_no_device_can_set_any_devices_config(write_results):
    for name in DEVICES:
        for other in ACCOUNTS:
            assert not write_results[name][site_topic(f"device/{other}/config/desired")]
    assert not write_results["tech-1"][site_topic("device/gate-1/config/desired")]
    assert write_results["central"][site_topic("device/gate-1/config/desired")]


# ------------------------------------------------------------- who gets in


def refused(probe: Probe) -> bool:
    return probe.connack is None or probe.connack.is_failure


def attempt(broker: Broker, probe: Probe) -> Probe:
    """Connect, note the answer, and leave: cleanly if let in, else closing the socket."""
    try:
        connect(probe, broker.tls_port)
    finally:
        if probe.connack is not None and not probe.connack.is_failure:
            stop(probe)
        else:
            probe.client.loop_stop()
            sock = probe.client.socket()
            if sock is not None:
                sock.close()
    return probe


def test_unauthenticated_client_is_refused(broker):
    assert refused(attempt(broker, broker.probe("anonymous", secret=None)))


def test_wrong_password_is_refused(broker):
    assert refused(attempt(broker, broker.probe("gate-1", secret="not-the-password")))


def test_another_devices_username_with_own_password_is_refused(broker):
    own = broker.secret("gate-3")
    assert refused(attempt(broker, broker.probe("gate-1", secret=own, client_id="gate-3")))


def test_tls_with_the_site_ca_connects(broker):
    probe = broker.probe("disp-2")
    probe.client.connect(HOST, broker.tls_port)  # by name: the certificate's SAN
    probe.client.loop_start()
    probe.wait(lambda: probe.connack is not None, "CONNACK")
    stop(probe)
    assert not probe.connack.is_failure


def test_tls_without_the_site_ca_fails(broker):
    # What paho's tls_set() without ca_certs does: the system's CAs, the host name checked.
    context = ssl.create_default_context()
    with (
        socket.create_connection(("127.0.0.1", broker.tls_port), timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=HOST)


def test_plain_mqtt_on_the_tls_port_gets_nowhere(broker):
    probe = broker.probe("disp-2", tls=False)
    probe.client.connect("127.0.0.1", broker.tls_port)
    probe.client.loop_start()
    probe.wait(lambda: probe.disconnected is not None, "disconnect")
    probe.client.loop_stop()
    assert probe.connack is None


def test_only_the_configured_listeners_open(broker):
    opened = {
        int(line.rsplit(" ", 1)[1].rstrip("."))
        for line in broker.log.read_text().splitlines()
        if "listen socket on port" in line
    }
    assert opened == {broker.tls_port, broker.plain_port}


def test_a_device_taking_anothers_client_id_does_not_displace_it(broker, probes):
    gate1 = probes["gate-1"]
    intruder = broker.probe("gate-3", client_id="gate-1")
    connect(intruder, broker.tls_port)
    try:
        assert not intruder.connack.is_failure
        info = gate1.client.publish(site_topic("device/gate-1/events"), b"still here", qos=1)
        gate1.wait(lambda: info.mid in gate1.pubacks, "PUBACK after the intruder")
        assert gate1.disconnected is None
    finally:
        stop(intruder)


def test_a_will_on_another_devices_status_is_never_delivered(broker, probes):
    central = probes["central"]
    target = site_topic("device/gate-1/status")
    rogue = connect(broker.probe("gate-3", will_topic=target), broker.tls_port)
    own_will = broker.probe("disp-2", will_topic=site_topic("device/disp-2/status"))
    connect(own_will, broker.tls_port)
    # drop both connections without DISCONNECT: the broker sends their wills
    for p in (rogue, own_will):
        p.client.loop_stop()
        p.client.socket().close()
    central.wait(
        lambda: any(
            m.topic == site_topic("device/disp-2/status") and m.payload == b"will"
            for m in central.messages
        ),
        "disp-2's own will",
    )
    fence({"central": central}, "will")
    with central.cond:
        assert not [m for m in central.messages if m.topic == target and m.payload == b"will"]


# ----------------------------------------------------- bundles and reloading


def test_a_gate_bundle_connects_through_mqttlink(broker):
    bundle = broker.site_dir / "devices" / "gate-3"
    cfg = config.load(bundle / "device.toml", DeviceConfig)
    mqtt = cfg.mqtt.model_copy(update={"tls_ca": bundle / "ca.crt"})
    events: list[object] = []
    up = threading.Event()

    def on_event(event: object) -> None:
        events.append(event)
        if isinstance(event, LinkUp):
            up.set()

    link = MqttLink(cfg.device.id, mqtt, on_event)
    link.start()
    try:
        assert up.wait(TIMEOUT), events
    finally:
        link.stop()
    assert (mqtt.host, mqtt.port, mqtt.username) == (HOST, broker.tls_port, "gate-3")


def connects(broker: Broker, name: str, secret: str) -> bool:
    return not refused(attempt(broker, broker.probe(name, secret=secret)))


def wait_reload(broker: Broker, name: str, secret: str, should_connect: bool) -> None:
    """SIGHUP is asynchronous: try until the broker answers the new way."""
    pause = threading.Event()
    for _ in range(200):
        if connects(broker, name, secret) == should_connect:
            return
        pause.wait(0.05)
    pytest.fail(f"{name}: the broker did not reload (still {not should_connect})")


def test_provision_rotate_and_revoke_take_effect_on_reload(broker, probes):
    provision.provision_device(broker.site_dir, "gate-9", "gate")
    first = broker.secret("gate-9")
    broker.regenerate_and_reload()
    wait_reload(broker, "gate-9", first, should_connect=True)

    provision.rotate_password(broker.site_dir, "gate-9")
    second = broker.secret("gate-9")
    broker.regenerate_and_reload()
    wait_reload(broker, "gate-9", second, should_connect=True)
    assert not connects(broker, "gate-9", first)

    provision.revoke(broker.site_dir, "gate-9")
    broker.regenerate_and_reload()
    wait_reload(broker, "gate-9", second, should_connect=False)
    # the matrix's clients were not disturbed by the reloads nor by the intruders
    assert {n: p.disconnected for n, p in probes.items()} == dict.fromkeys(probes)
