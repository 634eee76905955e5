"""Central's config publisher on its own: statuses add devices, new versions go out signed
and retained, everything again after a reconnect, removed devices are cleared, and
reports are kept only from the device whose topic they came on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.config_publisher import PUMP_EVERY, ConfigPublisher, load_signing_key
from central.devconfig import DesiredConfigs, config_states
from central.service import CentralService
from central.settings import CentralConfig
from entrada import config, protocol, signing
from entrada.signing import SigningError

T = 1_800_000_000.0
KEY = Ed25519PrivateKey.generate()
TOPICS = protocol.Topics("test")


@dataclass
class Wire:
    """A stand-in for the broker link: records what was published; ``up`` False refuses."""

    up: bool = True
    sent: list[tuple[str, bytes, int, bool]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        if not self.up:
            return False
        self.sent.append((topic, payload, qos, retain))
        return True

    def desired(self) -> list[protocol.ConfigDesired]:
        return [protocol.decode(protocol.ConfigDesired, p) for _t, p, _q, _r in self.sent if p]

    def take(self) -> list[protocol.ConfigDesired]:
        out = self.desired()
        self.sent.clear()
        return out


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite"


@pytest.fixture
def publisher(db: Path) -> Iterator[ConfigPublisher]:
    p = ConfigPublisher(db, TOPICS, KEY)
    yield p
    p.close()


class Clock:
    """Monotonic time for :meth:`ConfigPublisher.pump`, moved by hand."""

    def __init__(self) -> None:
        self.mono = 100.0

    def next(self) -> float:
        self.mono += PUMP_EVERY
        return self.mono


def status(device: str, role: str = "gate", epoch: int = 1) -> protocol.Status:
    return protocol.Status(device=device, role=role, state="online", epoch=epoch, ts=T)


def report(device: str, version: int, state: str = "applied", **kw) -> bytes:
    msg = protocol.ConfigReported(device=device, version=version, state=state, ts=T, **kw)
    return protocol.encode(msg)


def test_a_new_device_gets_a_signed_retained_config(publisher):
    wire, clock = Wire(), Clock()
    publisher.on_status(status("gate-1"), T)

    publisher.pump(wire.publish, clock.next())

    ((topic, payload, qos, retain),) = wire.sent
    assert (topic, qos, retain) == (TOPICS.config_desired("gate-1"), 1, True)
    msg = protocol.decode(protocol.ConfigDesired, payload)
    assert (msg.device, msg.version, msg.document) == ("gate-1", 1, {})
    assert signing.verify(
        KEY.public_key(), signing.config_payload("gate-1", 1, msg.document), msg.signature
    )


def test_a_version_written_by_the_cli_goes_out_at_the_next_pump(publisher, db):
    wire, clock = Wire(), Clock()
    publisher.on_status(status("gate-1"), T)
    publisher.pump(wire.publish, clock.next())
    wire.take()
    with DesiredConfigs(db) as cli:  # what `entrada tech config set` does
        cli.set("gate-1", ["gate.relay_pulse=0.7"], 1, now=T)

    publisher.pump(wire.publish, clock.mono)  # not yet due
    assert wire.sent == []
    publisher.pump(wire.publish, clock.next())

    (msg,) = wire.take()
    assert (msg.version, msg.document) == (2, {"gate": {"relay_pulse": 0.7}})
    publisher.pump(wire.publish, clock.next())
    assert wire.sent == []  # published once


def test_statuses_of_a_known_device_change_nothing_until_its_role_does(publisher, db):
    wire, clock = Wire(), Clock()
    publisher.on_status(status("dev-1"), T)
    publisher.on_status(status("dev-1", epoch=2), T)
    publisher.pump(wire.publish, clock.next())
    assert [m.version for m in wire.take()] == [1]

    publisher.on_status(status("dev-1", role="display", epoch=1), T, newest=False)  # stale
    publisher.pump(wire.publish, clock.next())
    assert wire.sent == []
    publisher.on_status(status("dev-1", role="display", epoch=3), T)
    publisher.pump(wire.publish, clock.next())

    assert [m.version for m in wire.take()] == [2]
    assert publisher.configs.role("dev-1") == "display"


def test_everything_is_published_again_after_a_reconnect(publisher):
    wire, clock = Wire(), Clock()
    for device in ("gate-1", "gate-2"):
        publisher.on_status(status(device), T)
    publisher.pump(wire.publish, clock.next())
    assert len(wire.take()) == 2

    publisher.link_up()  # the broker may have lost its retained messages
    publisher.pump(wire.publish, clock.mono)  # at once, not at the next interval

    assert sorted((m.device, m.version) for m in wire.take()) == [("gate-1", 1), ("gate-2", 1)]
    publisher.pump(wire.publish, clock.next())
    assert wire.sent == []


def test_a_version_is_due_until_the_link_takes_it(publisher):
    wire, clock = Wire(up=False), Clock()
    publisher.on_status(status("gate-1"), T)
    publisher.pump(wire.publish, clock.next())
    assert publisher.configs.unpublished() == [("gate-1", 1)]

    wire.up = True
    publisher.pump(wire.publish, clock.next())

    assert [m.version for m in wire.take()] == [1]
    assert publisher.configs.unpublished() == []


def test_a_removed_device_has_its_retained_config_cleared(publisher, db):
    wire, clock = Wire(), Clock()
    publisher.on_status(status("gate-1"), T)
    publisher.pump(wire.publish, clock.next())
    wire.take()
    with DesiredConfigs(db) as cli:
        cli.remove_device("gate-1", now=T)

    publisher.pump(wire.publish, clock.next())

    assert wire.sent == [(TOPICS.config_desired("gate-1"), b"", 1, True)]
    assert publisher.configs.removed_devices() == []


def test_reports_are_kept(publisher, db):
    publisher.on_status(status("gate-1"), T)

    kept = publisher.on_reported(
        "gate-1",
        report("gate-1", 1, "rolled_back", code="config.rolled_back.self_check", reason="no"),
        T,
    )

    assert kept and publisher.reports == 1
    (state,) = config_states(db)
    assert (state.device, state.state, state.code, state.reason) == (
        "gate-1",
        "rolled_back",
        "config.rolled_back.self_check",
        "no",
    )


def test_a_report_on_another_devices_topic_is_refused(publisher, db, caplog):
    caplog.set_level(logging.WARNING, "central")
    publisher.on_status(status("gate-1"), T)
    publisher.on_status(status("gate-2"), T)

    kept = publisher.on_reported("gate-2", report("gate-1", 1, "rejected", reason="x"), T)

    assert not kept and publisher.refused == 1
    assert {s.device: s.state for s in config_states(db)} == {
        "gate-1": "pending",
        "gate-2": "pending",
    }
    assert "reject.wrong_device" in caplog.text


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b'{"v": 1, "type": "config_reported", "device": "gate-1", "version": 1}',
        b'{"v": 1, "type": "config_reported", "device": "gate-1", "version": 1, '
        b'"state": "applied", "ts": 1.0, "extra": 1}',
    ],
)
def test_malformed_reports_are_refused(publisher, payload):
    assert not publisher.on_reported("gate-1", payload, T)
    assert publisher.refused == 1


def test_without_a_key_nothing_is_published_but_reports_are_kept(db, caplog):
    caplog.set_level(logging.INFO, "central")
    wire, clock = Wire(), Clock()
    publisher = ConfigPublisher(db, TOPICS, load_signing_key(None))
    try:
        publisher.on_status(status("gate-1"), T)
        publisher.pump(wire.publish, clock.next())
        publisher.link_up()
        publisher.pump(wire.publish, clock.next())

        assert wire.sent == []
        assert publisher.on_reported("gate-1", report("gate-1", 1), T)
    finally:
        publisher.close()
    assert caplog.text.count("signing_key") == 1


def test_a_configured_key_must_be_usable(tmp_path):
    private, public = signing.generate_keypair(tmp_path)

    assert isinstance(load_signing_key(private), Ed25519PrivateKey)
    with pytest.raises(SigningError):
        load_signing_key(public)
    with pytest.raises(SigningError):
        load_signing_key(tmp_path / "missing.key")


def test_central_does_not_start_with_an_unusable_key(tmp_path):
    cfg = config.validate(
        CentralConfig,
        {
            "central": {
                "site": "test",
                "data_dir": str(tmp_path / "central"),
                "signing_key": str(tmp_path / "missing.key"),
            }
        },
    )
    service = CentralService(cfg)

    with pytest.raises(SigningError, match=r"missing\.key"):
        service.start()
    assert not service.running
