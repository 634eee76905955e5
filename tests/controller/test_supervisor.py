"""The config apply cycle: the session's decisions, and the supervisor building, trying,
committing and rolling back runtimes (offline: reports wait in the store; the broker side
is tests/scenario/test_scenario_config_apply.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.config_apply import ConfigCode, ConfigKeeper, FailedConfig, effective
from controller.daemon import build_runtime
from controller.device_core import ExitReason
from controller.store import DeviceStore
from controller.supervisor import ConfigSession, ConfigStep, ReportSlot, Supervisor, Trial
from entrada import protocol, signing
from entrada.broker import free_port
from entrada.errors import DriverError
from entrada.mqtt import Incoming
from entrada.site import wait_until

KEY = Ed25519PrivateKey.generate()
TOPICS = protocol.Topics("t")
TIMEOUT = 10.0
MISSING_PORT = "/dev/entrada-no-such-reader"


def bootstrap(tmp_path: Path, **drivers: Any) -> dict[str, Any]:
    key = tmp_path / "site_signing.pub"
    if not key.exists():
        key.write_bytes(
            KEY.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return {
        "device": {
            "id": "gate-1",
            "site": "t",
            "role": "gate",
            "data_dir": str(tmp_path / "gate"),
            "run_dir": str(tmp_path / "run"),
            "config_key": str(key),
        },
        # nobody listens there: the device runs offline and keeps its reports
        "mqtt": {"port": free_port(), "reconnect_min": 0.05, "reconnect_max": 0.5},
        "gate": {"relay_pulse": 0.2},
        "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim", **drivers},
    }


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(tomli_w.dumps(doc))
    return path


def desired(document: dict[str, Any], version: int, device: str = "gate-1") -> bytes:
    payload = signing.config_payload(device, version, document)
    message = protocol.ConfigDesired(
        device=device, version=version, document=document, signature=signing.sign(KEY, payload)
    )
    return protocol.encode(message)


def feed(sup: Supervisor, payload: bytes) -> None:
    """Hand the running runtime a desired config as the broker would."""
    runtime = sup.runtime
    assert runtime is not None
    runtime.inbox.put(Incoming(TOPICS.config_desired("gate-1"), payload, retain=True))


def db(tmp_path: Path) -> Path:
    return tmp_path / "gate" / "device.db"


@dataclass(frozen=True)
class Kept:
    """What the device store holds about configs, read at one moment."""

    applied_version: int
    pending: bool
    last_good: int
    failed: FailedConfig | None
    report: protocol.ConfigReported | None


def kept(tmp_path: Path) -> Kept:
    conn = sqlite3.connect(db(tmp_path), isolation_level=None)
    try:
        keeper = ConfigKeeper(conn)
        return Kept(
            keeper.applied_version,
            keeper.pending,
            keeper.last_good.version,
            keeper.failed,
            ReportSlot(conn).get(),
        )
    finally:
        conn.close()


@contextmanager
def supervised(sup: Supervisor) -> Iterator[Supervisor]:
    """The supervisor on a thread (signals are only installed by run_device)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sup.run()
        except BaseException as err:  # the test's thread reports it
            errors.append(err)

    thread = threading.Thread(target=run, name="supervisor")
    thread.start()
    try:
        assert wait_until(lambda: sup.runtime is not None, TIMEOUT)
        yield sup
    finally:
        sup.request_stop("test over")
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    assert errors == []


def generation(sup: Supervisor, n: int) -> bool:
    return wait_until(lambda: sup.generation == n and sup.runtime is not None, TIMEOUT)


# -------------------------------------------------------------- the session


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "device.db", isolation_level=None)
    yield c
    c.close()


def session(conn: sqlite3.Connection, boot: dict[str, Any]) -> ConfigSession:
    return ConfigSession(conn, "gate-1", boot, effective(boot, {}), KEY.public_key())


def decoded(payload: bytes) -> protocol.ConfigDesired:
    return protocol.decode(protocol.ConfigDesired, payload)


def test_a_version_that_changes_nothing_running_is_applied_at_once(conn, tmp_path):
    s = session(conn, bootstrap(tmp_path))

    step = s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.2}}, 4)), 100.0)

    assert step.exit is None and step.report is None and step.versions_changed
    assert (s.version, s.keeper.last_good.version, s.keeper.pending) == (4, 4, False)
    sent = s.pending_report()
    assert sent is not None
    assert (sent.version, sent.state, sent.code) == (4, "applied", ConfigCode.APPLIED)
    s.report_sent(sent)
    assert s.pending_report() is None


def test_a_version_that_changes_something_is_staged_and_ends_the_runtime(conn, tmp_path):
    s = session(conn, bootstrap(tmp_path))

    step = s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.7}}, 2)), 100.0)
    again = s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.8}}, 3)), 101.0)

    assert (step.exit, step.report) == (ExitReason.RECONFIGURE, None)
    assert s.keeper.pending and s.keeper.applied_version == 2
    assert again == ConfigStep()  # the next runtime sees the newer one
    assert s.pending_report() is None


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            protocol.encode(protocol.ConfigDesired(device="gate-1", version=2, document={})),
            ConfigCode.REJECTED_UNSIGNED,
        ),
        (desired({}, 2, device="gate-2"), ConfigCode.REJECTED_WRONG_DEVICE),
        (desired({"gate": {"relay_pulse": 99}}, 2), ConfigCode.REJECTED_SCHEMA),
        (desired({"mqtt": {"port": 1}}, 2), ConfigCode.REJECTED_LOCAL_ONLY),
        (desired({"device": {"config_key": "/tmp/k.pub"}}, 2), ConfigCode.REJECTED_LOCAL_ONLY),
    ],
)
def test_refusals_are_reported_and_change_nothing(conn, tmp_path, payload, code):
    s = session(conn, bootstrap(tmp_path))

    step = s.on_desired(decoded(payload), 100.0)

    assert step.exit is None and step.report is not None
    assert (step.report.state, step.report.code) == ("rejected", code)
    assert s.keeper.applied_version == 0 and s.pending_report() is None


def test_without_a_key_everything_is_refused(conn, tmp_path):
    boot = bootstrap(tmp_path)
    s = ConfigSession(conn, "gate-1", boot, effective(boot, {}), None)

    step = s.on_desired(decoded(desired({}, 1)), 100.0)

    assert step.report is not None and step.report.code == ConfigCode.REJECTED_NO_KEY


def test_a_trial_commits_after_its_time_and_then_takes_a_newer_version(conn, tmp_path):
    boot = bootstrap(tmp_path)
    keeper = ConfigKeeper(conn)
    keeper.stage(2, {"gate": {"relay_pulse": 0.7}})
    running = effective(boot, keeper.applied.document)
    s = ConfigSession(conn, "gate-1", boot, running, KEY.public_key(), trial=Trial(2, 5.0))

    assert s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.7}}, 2)), 1.0).exit is None
    assert s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.9}}, 3)), 1.0).exit is None
    first = s.trial_step(None, 10.0, 100.0)
    early = s.trial_step(None, 14.9, 104.9)
    done = s.trial_step(None, 15.0, 105.0)

    assert first.exit is None and early.exit is None
    assert s.keeper.last_good.version == 2
    report = s.pending_report()
    assert report is not None and (report.version, report.state) == (2, "applied")
    # version 3 waited for the trial, and is staged now
    assert (done.exit, s.keeper.applied_version) == (ExitReason.RECONFIGURE, 3)


def test_a_problem_during_the_trial_ends_it(conn, tmp_path):
    boot = bootstrap(tmp_path)
    ConfigKeeper(conn).stage(2, {"drivers": {"rfid": "serial"}})
    s = ConfigSession(
        conn, "gate-1", boot, effective(boot, {}), KEY.public_key(), trial=Trial(2, 5.0)
    )

    step = s.trial_step("the serial reader did not start", 10.0, 100.0)

    assert (step.exit, step.why) == (ExitReason.ROLL_BACK, "the serial reader did not start")
    assert s.failure == (ConfigCode.ROLLED_BACK_SELF_CHECK, "the serial reader did not start")
    assert s.keeper.pending  # the supervisor rolls it back
    assert s.on_desired(decoded(desired({}, 3)), 101.0) == ConfigStep()


def test_when_the_file_runs_alone_the_applied_version_is_not_claimed(conn, tmp_path):
    boot = bootstrap(tmp_path)
    keeper = ConfigKeeper(conn)
    keeper.stage(3, {"gate": {"relay_pulse": 0.7}})
    keeper.commit()
    s = ConfigSession(
        conn, "gate-1", boot, effective(boot, {}), KEY.public_key(), fallback="it broke"
    )

    step = s.on_desired(decoded(desired({"gate": {"relay_pulse": 0.7}}, 3)), 100.0)

    assert s.version == 0
    assert step.report is not None
    assert (step.report.state, step.report.code) == ("rejected", ConfigCode.REJECTED_SCHEMA)
    assert step.report.reason and "does not fit this device's own file: it broke" in (
        step.report.reason
    )


# ----------------------------------------------------------------- supervisor


def test_a_new_config_is_tried_then_committed(tmp_path):
    sup = Supervisor(write(tmp_path, bootstrap(tmp_path)), self_check_seconds=0.2)
    with supervised(sup):
        first = sup.runtime
        feed(sup, desired({"gate": {"relay_pulse": 0.7}}, 2))
        assert generation(sup, 2)
        # committed, then its report kept for sending (two writes: wait for both)
        assert wait_until(
            lambda: not kept(tmp_path).pending and kept(tmp_path).report is not None, TIMEOUT
        )
        runtime = sup.runtime
        store = kept(tmp_path)

    assert runtime.cfg.gate.relay_pulse == 0.7  # type: ignore[union-attr]
    assert (store.applied_version, store.last_good) == (2, 2)
    assert first.drivers.relay.closed and not first.drivers.relay.energised  # type: ignore[union-attr]
    assert store.report is not None
    assert (store.report.version, store.report.state) == (2, "applied")


def test_a_config_that_fails_its_self_check_is_rolled_back(tmp_path):
    sup = Supervisor(write(tmp_path, bootstrap(tmp_path)), self_check_seconds=5.0)
    bad = {"drivers": {"rfid": "serial", "serial": {"port": MISSING_PORT}}}
    with supervised(sup):
        feed(sup, desired(bad, 2))
        assert generation(sup, 3)
        runtime = sup.runtime
        store = kept(tmp_path)

    assert runtime.cfg.drivers.rfid == "sim"  # type: ignore[union-attr]
    assert (store.applied_version, store.pending) == (0, False)
    assert store.failed is not None and store.failed.version == 2
    report = store.report
    assert report is not None
    assert (report.version, report.state, report.code) == (
        2,
        "rolled_back",
        ConfigCode.ROLLED_BACK_SELF_CHECK,
    )
    assert report.reason == "the serial reader did not start"


def test_drivers_that_do_not_build_are_a_failed_apply(tmp_path):
    def build(cfg, store, clock):
        if cfg.gate.relay_pulse == 0.9:
            raise DriverError("relay on GPIO17: pin in use")
        return build_runtime(cfg, store, clock)

    sup = Supervisor(write(tmp_path, bootstrap(tmp_path)), build=build, self_check_seconds=0.2)
    with supervised(sup):
        feed(sup, desired({"gate": {"relay_pulse": 0.9}}, 2))
        assert wait_until(lambda: kept(tmp_path).report is not None, TIMEOUT)
        assert generation(sup, 2)
        store = kept(tmp_path)

    assert store.applied_version == 0
    report = store.report
    assert report is not None
    assert (report.state, report.code) == ("rolled_back", ConfigCode.ROLLED_BACK_APPLY_FAILED)
    assert report.reason == "the drivers did not start: relay on GPIO17: pin in use"


def test_an_apply_cut_short_is_rolled_back_at_the_next_start(tmp_path):
    path = write(tmp_path, bootstrap(tmp_path))
    sup = Supervisor(path, self_check_seconds=60.0)
    with supervised(sup):
        feed(sup, desired({"gate": {"relay_pulse": 0.7}}, 2))
        assert generation(sup, 2)  # on trial when the device stops
    assert kept(tmp_path).pending

    again = Supervisor(path, self_check_seconds=0.2)
    with supervised(again):
        runtime = again.runtime
        store = kept(tmp_path)

    assert runtime.cfg.gate.relay_pulse == 0.2  # type: ignore[union-attr]
    assert not store.pending and store.failed is not None
    report = store.report
    assert report is not None
    assert (report.version, report.state, report.code) == (
        2,
        "rolled_back",
        ConfigCode.ROLLED_BACK_INTERRUPTED,
    )


def test_restart_builds_the_same_config_with_the_relay_released(tmp_path):
    sup = Supervisor(write(tmp_path, bootstrap(tmp_path)))
    with supervised(sup):
        first = sup.runtime
        assert first is not None
        first.request_stop("restart command", ExitReason.RESTART)
        assert generation(sup, 2)
        second = sup.runtime

    assert second is not first
    assert second.cfg == first.cfg  # type: ignore[union-attr]
    assert first.drivers.relay.closed and first.drivers.relay.releases >= 1  # type: ignore[union-attr]
    assert second.drivers.relay.closed  # stopped at the end of the test  # type: ignore[union-attr]


def test_a_document_that_no_longer_fits_the_file_runs_the_file_alone(tmp_path, caplog):
    boot = bootstrap(tmp_path, rotation="sim")
    store = DeviceStore(db(tmp_path))
    keeper = ConfigKeeper(store.conn)
    keeper.stage(3, {"drivers": {"sim": {"auto_rotate": 1.0}}})
    keeper.commit()
    store.close()
    boot["drivers"].pop("rotation")  # the file was edited since: no rotation sensor now

    sup = Supervisor(write(tmp_path, boot))
    with supervised(sup):
        runtime = sup.runtime

    assert runtime.cfg.drivers.rotation == "none"  # type: ignore[union-attr]
    assert runtime.config_session.fallback is not None  # type: ignore[union-attr]
    assert "config version 3 does not fit this device's file any more" in caplog.text
