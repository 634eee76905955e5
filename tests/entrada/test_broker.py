"""The private Mosquitto used by the demo, the tests and the benchmarks."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from entrada import broker as broker_mod
from entrada.broker import PrivateBroker, broker_conf, find_mosquitto, free_port, wait_for_port
from entrada.errors import EntradaError

# MQTT 3.1.1 CONNECT with clean session, keepalive 60, empty client id; CONNACK "accepted".
CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
CONNACK_OK = b"\x20\x02\x00\x00"


def mqtt_handshake(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(CONNECT)
        return sock.recv(4)


def conf_lines(text: str) -> dict[str, str]:
    pairs = (line.split(" ", 1) for line in text.splitlines() if line.strip())
    return {key: value for key, value in pairs}


@pytest.fixture
def broker(tmp_path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    yield b
    b.stop()


def test_starts_and_speaks_mqtt(broker):
    broker.start()

    assert broker.running
    assert mqtt_handshake(broker.port) == CONNACK_OK


def test_kill_then_start_reuses_the_port(broker):
    broker.start()
    first = broker.proc

    broker.kill()
    assert not broker.running
    assert first.returncode == -9
    broker.start()

    assert broker.running and broker.proc is not first
    assert mqtt_handshake(broker.port) == CONNACK_OK


def test_context_manager_stops_and_frees_the_port(tmp_path):
    with PrivateBroker(tmp_path) as b:
        port = b.port
        assert b.running

    assert b.proc is None
    assert not wait_for_port("127.0.0.1", port, timeout=0.3)


def test_written_config_sets_queue_limits_deliberately(broker):
    broker.start()

    conf = conf_lines((broker.workdir / "broker" / "mosquitto.conf").read_text())

    assert int(conf["max_queued_messages"]) > 1000  # not Mosquitto's silent-drop default
    assert conf["max_queued_bytes"] == "0"
    assert conf["listener"] == f"{broker.port} 127.0.0.1"


@pytest.mark.parametrize(("persistence", "expected"), [(True, "true"), (False, "false")])
def test_broker_conf(tmp_path, persistence, expected):
    conf = conf_lines(broker_conf(1234, tmp_path, persistence, extra="retain_available true"))

    assert conf["persistence"] == expected
    assert conf["persistence_location"] == f"{tmp_path}/"
    assert conf["listener"] == "1234 127.0.0.1"
    assert conf["retain_available"] == "true"


def test_broker_that_never_listens_is_an_error_and_cleaned_up(tmp_path):
    b = PrivateBroker(tmp_path, extra_conf="no_such_option 1")

    with pytest.raises(EntradaError, match="did not listen"):
        b.start(timeout=1.0)

    assert b.proc is None


def test_missing_candidates_is_an_entrada_error(monkeypatch):
    monkeypatch.setattr(broker_mod, "MOSQUITTO_CANDIDATES", ("entrada-no-such-binary",))

    with pytest.raises(EntradaError, match="apt-get install mosquitto"):
        find_mosquitto()


def test_start_without_mosquitto_is_an_entrada_error(monkeypatch, tmp_path):
    monkeypatch.setattr(broker_mod.shutil, "which", lambda _name: None)
    b = PrivateBroker(tmp_path)

    with pytest.raises(EntradaError, match="mosquitto not found"):
        b.start()

    assert b.proc is None


def test_free_port_can_be_bound():
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
