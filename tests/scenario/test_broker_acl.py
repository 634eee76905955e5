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
code generates), so a wrong ACL cannot agree with itself. The oracle, the broker and
the clients are in acl_rig.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from acl_rig import (
    ACCOUNTS,
    DEVICES,
    FILTERS,
    HOST,
    READ_TOPICS,
    SITE,
    TIMEOUT,
    TOPICS,
    Broker,
    Probe,
    attempt,
    connect,
    connects,
    expected_reads,
    fence,
    matrix_probes,
    may,
    refused,
    running_broker,
    site_topic,
    stop,
)

from controller.settings import DeviceConfig
from entrada import config, provision
from entrada.mqtt import LinkUp, MqttLink

pytestmark = pytest.mark.scenario

# ------------------------------------------------------------------ the matrix


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Broker]:
    with running_broker(tmp_path_factory.mktemp("acl")) as b:
        yield b


@pytest.fixture(scope="module")
def probes(broker) -> Iterator[dict[str, Probe]]:
    with matrix_probes(broker) as made:
        yield made


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
