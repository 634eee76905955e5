"""The broker ACL matrix's machinery (tests/scenario/test_broker_acl.py): the site's
accounts, the oracle of who may read and write what (written from the topic map, not
from the ACL the code generates), the broker started as our user from
``entrada broker-config``'s files, and the paho clients that record what they are told.
"""

from __future__ import annotations

import getpass
import signal
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from entrada import brokerconf, provision
from entrada.broker import find_mosquitto, free_port, wait_for_port

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


def matching(topic: str) -> set[int]:
    return {i for i, f in enumerate(FILTERS, start=1) if paho.topic_matches_sub(f, topic)}


def expected_reads(name: str) -> dict[str, set[int]]:
    want = {t: matching(t) for t in READ_TOPICS if may(name, t, "read")}
    return {t: ids for t, ids in want.items() if ids}


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


@contextmanager
def running_broker(root: Path) -> Iterator[Broker]:
    """Provision a site in ``root``, write its broker config and run Mosquitto on it."""
    binary = find_mosquitto()
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


@contextmanager
def matrix_probes(broker: Broker) -> Iterator[dict[str, Probe]]:
    """A client per account, connected and subscribed to every filter of ``FILTERS``
    (each with its index as the subscription identifier)."""
    made: dict[str, Probe] = {}
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


def fence(probes: dict[str, Probe], tag: str) -> None:
    """Central publishes a fence to each client after everything else; Mosquitto keeps
    a client's deliveries in order, so once the fence is in, everything before it is."""
    central = probes["central"]
    for name in probes:
        central.client.publish(fence_topic(name), f"fence:{tag}:{name}".encode(), qos=1)
    for name, probe in probes.items():
        want = f"fence:{tag}:{name}".encode()
        probe.wait(lambda p=probe, w=want: p.got_payload(w), f"fence {tag}")


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


def connects(broker: Broker, name: str, secret: str) -> bool:
    return not refused(attempt(broker, broker.probe(name, secret=secret)))
