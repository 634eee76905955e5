"""``entrada tech`` against a real Mosquitto and a fake device: the device side is only a
:class:`~controller.commands.CommandDesk` behind a paho client, with recording handlers
(the runtime's own wiring is tested with the runtime). Covers the round trip, the MQTT 5
properties on the wire, expiry, a retried id answered as a duplicate, a device that does
not answer, ``tech logs``, ``tech watch`` and ``tech devices``."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.sqlite_store import SqliteStorage
from controller.commands import CommandCode, CommandDesk, CommandOutcome, logs_handler
from entrada import cli_tech, protocol
from entrada.broker import PrivateBroker
from entrada.logring import LogRing
from entrada.mqtt import Incoming

pytestmark = pytest.mark.scenario

SITE = "demo"
TIMEOUT = 10.0
TOPICS = protocol.Topics(SITE)


class FakeDevice:
    """A device's command side: paho's thread only enqueues; an owner thread runs the desk
    and publishes its replies with the correlation data."""

    def __init__(self, broker: PrivateBroker, device: str, db: str, clock_skew: float = 0.0):
        self.device = device
        self.clock_skew = clock_skew
        self.opened: list[Any] = []
        self.seen: list[Incoming] = []
        self.ring = LogRing(20, fmt="%(levelname)s %(message)s")
        self.ring.handle(
            logging.LogRecord("gate", logging.INFO, __file__, 1, "relay ready", None, None)
        )
        self.ring.handle(
            logging.LogRecord("gate", logging.ERROR, __file__, 1, "login password=x", None, None)
        )
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.desk = CommandDesk(
            conn,
            device,
            {"open-gate": self._open_gate, "logs": logs_handler(self.ring.tail)},
            topics=TOPICS,
        )
        self._conn = conn
        self._inbox: queue.Queue[Incoming | None] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=device, protocol=paho.MQTTv5
        )
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(TOPICS.cmd_request(device), 1)
        self.client.on_subscribe = lambda c, u, m, r, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self._owner = threading.Thread(target=self._serve, name=f"owner-{device}")
        self._owner.start()
        assert self._subscribed.wait(TIMEOUT), "the fake device did not subscribe"

    def _open_gate(self, args: Any, now: float) -> CommandOutcome:
        self.opened.append(args)
        return CommandOutcome(True, CommandCode.DONE, {"seconds": args.seconds or 1.5})

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = msg.properties
        self._inbox.put(
            Incoming(
                msg.topic,
                bytes(msg.payload),
                bool(msg.retain),
                getattr(props, "ResponseTopic", None),
                getattr(props, "CorrelationData", None),
                getattr(props, "MessageExpiryInterval", None),
            )
        )

    def _serve(self) -> None:
        while (msg := self._inbox.get()) is not None:
            self.seen.append(msg)
            reply = self.desk.on_request(
                msg.payload,
                msg.response_topic,
                msg.correlation,
                time.time() + self.clock_skew,
                retained=msg.retain,
            )
            if reply is not None:
                self.client.publish(
                    reply.topic, reply.payload, qos=1, properties=reply.properties()
                )

    def close(self) -> None:
        self._inbox.put(None)
        self._owner.join(TIMEOUT)
        self.client.disconnect()
        self.client.loop_stop()
        self._conn.close()


@pytest.fixture
def broker(tmp_path):
    with PrivateBroker(tmp_path) as b:
        yield b


@pytest.fixture
def central_config(tmp_path, broker):
    path = tmp_path / "central.toml"
    path.write_text(
        f'[central]\nsite = "{SITE}"\ndata_dir = "{tmp_path / "central"}"\n\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
    )
    return str(path)


@pytest.fixture
def make_device(tmp_path, broker):
    devices: list[FakeDevice] = []

    def make(device: str = "gate-1", clock_skew: float = 0.0) -> FakeDevice:
        d = FakeDevice(broker, device, str(tmp_path / f"{device}.db"), clock_skew)
        devices.append(d)
        return d

    yield make
    for d in devices:
        d.close()


def tech(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli_tech.main(["tech", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_open_gate_round_trip(capsys, central_config, make_device):
    gate = make_device()

    rc, out, _ = tech(capsys, "cmd", "gate-1", "open-gate", "seconds=2", "--config", central_config)

    assert rc == 0
    assert out.splitlines() == ["gate-1 open-gate: ok [cmd.done]", "  seconds: 2.0"]
    assert [a.seconds for a in gate.opened] == [2.0]
    (request,) = gate.seen
    assert request.response_topic == TOPICS.cmd_response("gate-1")
    assert request.correlation and len(request.correlation) == 16
    assert request.expiry is not None and 1 <= request.expiry <= 30


def test_a_retried_id_runs_once_and_answers_duplicate(capsys, central_config, make_device):
    gate = make_device()
    argv = ("cmd", "gate-1", "open-gate", "--id", "tech-retry-0001", "--config", central_config)

    first = tech(capsys, *argv)
    again = tech(capsys, *argv, "--json")

    assert first[0] == 0 and again[0] == 0
    assert len(gate.opened) == 1
    answer = protocol.decode(protocol.CommandResponse, again[1].strip())
    assert (answer.id, answer.ok, answer.duplicate) == ("tech-retry-0001", True, True)


def test_an_expired_command_never_runs(capsys, central_config, make_device):
    gate = make_device(clock_skew=120.0)  # the device's clock is two minutes ahead

    rc, out, _ = tech(
        capsys, "cmd", "gate-1", "open-gate", "--expiry", "30", "--config", central_config
    )

    assert rc == cli_tech.EXIT_REFUSED
    assert out.startswith("gate-1 open-gate: refused [reject.expired]: expired ")
    assert gate.opened == []


def test_unknown_commands_and_bad_arguments_are_refused(capsys, central_config, make_device):
    gate = make_device()

    unknown = tech(capsys, "cmd", "gate-1", "reboot", "--config", central_config)
    bad = tech(capsys, "cmd", "gate-1", "open-gate", "seconds=fast", "--config", central_config)

    assert unknown[0] == bad[0] == cli_tech.EXIT_REFUSED
    assert "refused [reject.unknown_command]: unknown command 'reboot'" in unknown[1]
    assert "refused [reject.bad_args]: seconds: " in bad[1]
    assert gate.opened == []


def test_no_answer_is_a_timeout(capsys, central_config, broker):
    rc, _, err = tech(
        capsys, "cmd", "gate-9", "identify", "--timeout", "0.5", "--config", central_config
    )
    assert rc == cli_tech.EXIT_NO_ANSWER
    assert "no answer from gate-9 within 0.5 s" in err


def test_logs_prints_the_device_lines_masked(capsys, central_config, make_device):
    make_device()

    rc, out, _ = tech(capsys, "logs", "gate-1", "--lines", "5", "--config", central_config)

    assert rc == 0
    assert out.splitlines() == ["INFO relay ready", "ERROR login password=********"]


def test_watch_prints_live_events_filtered(central_config, broker, monkeypatch):
    lines: queue.Queue[str] = queue.Queue()
    monkeypatch.setattr(cli_tech, "_write", lines.put)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-pub", protocol=paho.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    status = protocol.Status(device="gate-1", role="gate", state="online", epoch=7, ts=1.0)
    pub.publish(
        TOPICS.status("gate-1"), protocol.encode(status), qos=1, retain=True
    ).wait_for_publish(TIMEOUT)
    result: list[int] = []
    argv = ["tech", "watch", "--config", central_config, "--kind", "status", "--kind", "gate.*"]
    watcher = threading.Thread(
        target=lambda: result.append(cli_tech.main([*argv, "--count", "2"])), daemon=True
    )
    watcher.start()
    try:
        first = lines.get(timeout=TIMEOUT)  # the retained status: the watch is subscribed
        batch = protocol.EventBatch(
            device="gate-1",
            events=[
                protocol.Event(
                    id=f"{n:032x}",
                    stream="gate.ab12",
                    seq=n,
                    kind=kind,
                    ts=2.0,
                    data={"uid": "04A1"},
                )
                for n, kind in ((1, "other.thing"), (2, "gate.passage"))
            ],
        )
        pub.publish(TOPICS.events("gate-1"), protocol.encode(batch), qos=1).wait_for_publish(
            TIMEOUT
        )
        second = lines.get(timeout=TIMEOUT)
        watcher.join(TIMEOUT)
    finally:
        pub.disconnect()
        pub.loop_stop()

    assert result == [0]
    assert "gate-1" in first and "status" in first
    assert "online role gate epoch 7 outbox 0 faults - (retained)" in first
    assert second.split()[2:] == ["gate-1", "gate.passage", "#2", '{"uid":"04A1"}']


def test_watch_lines_as_json_and_for_bad_payloads():
    msg = Incoming(TOPICS.events("gate-2"), b"not json", False)
    (line,) = cli_tech.watch_lines(TOPICS, msg, as_json=True)
    doc = json.loads(line)
    assert (doc["device"], doc["kind"]) == ("gate-2", "invalid")
    assert doc["reason"].startswith("reject.not_json")
    assert cli_tech.watch_lines(TOPICS, msg, kinds=["gate.*"]) == []


def test_devices_lists_the_registry(capsys, central_config, tmp_path):
    with SqliteStorage(tmp_path / "central" / "central.sqlite") as store:
        store.apply_status(
            protocol.Status(
                device="gate-1",
                role="gate",
                state="online",
                epoch=3,
                ts=0.0,
                versions=protocol.Versions(software="0.5.0", config=4, catalog=12),
                outbox_depth=2,
                faults=["fault.reader_down"],
            ),
            now=time.time(),
        )

    rc, out, _ = tech(capsys, "devices", "--config", central_config)
    rc_json, out_json, _ = tech(capsys, "devices", "--json", "--config", central_config)

    assert rc == rc_json == 0
    header, row = out.splitlines()
    assert header.split()[:4] == ["device", "role", "state", "software"]
    assert row.split()[:7] == ["gate-1", "gate", "online", "0.5.0", "v4", "12", "2"]
    assert row.endswith("fault.reader_down")
    (device,) = json.loads(out_json)["devices"]
    assert (device["device"], device["outbox_depth"]) == ("gate-1", 2)


def test_arguments_are_json_when_they_parse():
    assert cli_tech.parse_pairs(["seconds=2", "full=true", "text=hi there", "x=NaN", "e="]) == {
        "seconds": 2,
        "full": True,
        "text": "hi there",
        "x": "NaN",
        "e": "",
    }
    with pytest.raises(ValueError, match="not key=value"):
        cli_tech.parse_pairs(["seconds"])


def test_a_missing_config_is_explained(capsys, monkeypatch):
    monkeypatch.delenv(cli_tech.CONFIG_ENV, raising=False)
    rc, _, err = tech(capsys, "devices")
    assert rc == cli_tech.EXIT_CONFIG
    assert "--config" in err
