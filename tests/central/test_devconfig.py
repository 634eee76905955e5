"""Central's desired device config: layers, versions, base-version checks, signing, reports."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.devconfig import (
    ConfigConflict,
    DesiredConfigs,
    InvalidConfig,
    UnknownDevice,
    config_states,
    parse_assignments,
)
from central.sqlite_store import SqliteStorage
from controller.config_apply import ConfigCode, check
from entrada import protocol, signing
from entrada.errors import ConfigError, EntradaError

T = 1_800_000_000.0
KEY = Ed25519PrivateKey.generate()
BOOT = {
    "device": {"id": "gate-1", "site": "test", "role": "gate"},
    "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim"},
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite"


@pytest.fixture
def configs(db: Path):
    with DesiredConfigs(db) as c:
        c.add_device("gate-1", "gate", now=T)
        c.add_device("gate-2", "gate", now=T)
        yield c


def reported(device: str, version: int, state: str, ts: float = T, **kw) -> protocol.ConfigReported:
    return protocol.ConfigReported(device=device, version=version, state=state, ts=ts, **kw)


# ----------------------------------------------------------------- layers


def test_new_devices_start_at_version_one_with_an_empty_document(configs):
    assert configs.get("gate-1") == (
        1,
        {},
        {"site": {}, "role:gate": {}, "device": {}},
    )


def test_layers_merge_site_then_role_then_device(configs):
    configs.set("gate-1", ["log.level=WARNING", "gate.debounce=3.0"], 1, "site", now=T)
    configs.set("gate-1", {"gate": {"debounce": 4.0, "relay_pulse": 2.0}}, 2, "role:gate", now=T)
    change = configs.set("gate-1", ["gate.relay_pulse=0.5"], 3, now=T)

    version, document, layers = configs.get("gate-1")
    assert version == change.version == 4
    assert document == {"log": {"level": "WARNING"}, "gate": {"debounce": 4.0, "relay_pulse": 0.5}}
    assert layers["device"] == {"gate": {"relay_pulse": 0.5}}
    assert configs.merged("gate-2") == {
        "log": {"level": "WARNING"},
        "gate": {"debounce": 4.0, "relay_pulse": 2.0},
    }


def test_site_and_role_changes_bump_every_device_they_cover(configs):
    configs.add_device("disp-1", "dispenser", now=T)
    change = configs.set("gate-1", ["log.level=DEBUG"], 1, "site", now=T)
    assert change.versions == {"disp-1": 2, "gate-1": 2, "gate-2": 2}

    change = configs.set("gate-2", ["gate.debounce=1.0"], 2, "role:gate", now=T)
    assert change.versions == {"gate-1": 3, "gate-2": 3}
    assert configs.get("disp-1")[0] == 2

    change = configs.set("gate-2", ["gate.debounce=2.0"], 3, now=T)
    assert change.versions == {"gate-2": 4}
    assert configs.get("gate-1")[0] == 3


def test_an_outdated_base_version_is_refused_not_merged(configs):
    configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    with pytest.raises(ConfigConflict) as caught:
        configs.set("gate-1", ["gate.relay_pulse=2.0"], 1, now=T)

    assert isinstance(caught.value, EntradaError)
    assert (caught.value.base, caught.value.current) == (1, 2)
    assert "version 2" in str(caught.value)
    assert configs.get("gate-1")[:2] == (2, {"gate": {"debounce": 1.0}})


def test_a_site_change_checks_the_base_of_the_device_named(configs):
    configs.set("gate-2", ["gate.debounce=1.0"], 1, now=T)
    with pytest.raises(ConfigConflict):
        configs.set("gate-2", ["log.level=DEBUG"], 1, "site", now=T)
    assert configs.get("gate-1")[0] == 1


def test_role_layer_must_be_the_devices_role(configs):
    with pytest.raises(ConfigError, match="is a gate"):
        configs.set("gate-1", ["log.level=DEBUG"], 1, "role:display", now=T)
    with pytest.raises(ConfigError, match="unknown layer"):
        configs.set("gate-1", ["log.level=DEBUG"], 1, "building", now=T)


def test_none_removes_a_key_and_replace_replaces_the_layer(configs):
    configs.set(
        "gate-1", ["gate.debounce=1.0", "gate.relay_pulse=2.0", "log.level=DEBUG"], 1, now=T
    )
    configs.set("gate-1", {"gate": {"debounce": None}, "log": None}, 2, now=T)
    assert configs.merged("gate-1") == {"gate": {"relay_pulse": 2.0}}
    configs.set("gate-1", {"presence": {"share": False}}, 3, now=T, replace=True)
    assert configs.merged("gate-1") == {"presence": {"share": False}}
    configs.set("gate-1", {"presence": {"share": None}}, 4, now=T)
    assert configs.get("gate-1")[2]["device"] == {}


def test_a_change_that_changes_nothing_keeps_the_version(configs):
    configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    change = configs.set("gate-1", ["gate.debounce=1.0"], 2, now=T)
    assert change.version == 2 and change.versions == {}


# -------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        (["gate.relay_pulse=999"], "gate.relay_pulse"),
        (["gate.relay_puls=1.0"], "did you mean 'relay_pulse'"),
        (["gate.relay_pulse=fast"], "gate.relay_pulse"),
        (["mqtt.host=evil"], "mqtt: only the device's own config file"),
        (["device.id=gate-9"], "device.id"),
        (["device.data_dir=/tmp"], "device.data_dir"),
        (["device.role=display"], "device.role"),
        (["drivers.rfid=nfc"], "drivers.rfid"),
    ],
)
def test_invalid_documents_are_refused_and_nothing_is_written(configs, pairs, words):
    with pytest.raises(InvalidConfig) as caught:
        configs.set("gate-1", pairs, 1, now=T)
    assert words in str(caught.value)
    assert configs.get("gate-1") == (1, {}, {"site": {}, "role:gate": {}, "device": {}})


def test_every_problem_is_listed(configs):
    with pytest.raises(InvalidConfig) as caught:
        configs.set("gate-1", ["gate.relay_pulse=999", "gate.debounce=-1", "log.nope=1"], 1, now=T)
    assert len(caught.value.errors) == 3


def test_a_site_change_that_breaks_one_device_is_refused(configs):
    configs.set("gate-2", ["gate.direction=out"], 1, now=T)
    with pytest.raises(InvalidConfig) as caught:
        configs.set("gate-1", ["gate.direction=sideways"], 1, "site", now=T)
    assert "gate-1: gate.direction" in str(caught.value)
    assert configs.get("gate-1")[0] == 1 and configs.get("gate-2")[0] == 2


def test_rules_that_need_the_device_file_are_warnings(configs):
    change = configs.set("gate-1", ["gate.admission=tariffs", "gate.direction=in"], 1, now=T)
    assert change.version == 2
    assert any("zone_to" in w for w in change.warnings)


def test_huge_values_are_refused(configs):
    with pytest.raises(InvalidConfig, match="characters"):
        configs.set("gate-1", {"drivers": {"serial": {"port": "x" * 5000}}}, 1, now=T)


# ------------------------------------------------------------- versions


def test_versions_are_never_reused_after_remove_and_add(configs):
    configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    configs.set("gate-1", ["gate.debounce=2.0"], 2, now=T)
    assert configs.remove_device("gate-1", now=T)
    with pytest.raises(UnknownDevice):
        configs.get("gate-1")

    assert configs.add_device("gate-1", "gate", now=T) == 4
    assert configs.merged("gate-1") == {}  # its own layer went with it


def test_a_report_of_a_version_central_never_gave_lifts_the_high_water_mark(configs):
    # central's store was restored from an old copy; the gate runs version 9
    configs.record_reported(reported("gate-1", 9, "applied"), now=T)
    change = configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    assert change.version == 10


def test_add_device_is_idempotent_and_a_new_role_is_a_new_version(configs):
    assert configs.add_device("gate-1", "gate", now=T) == 1
    assert configs.add_device("gate-1", "display", now=T) == 2
    assert configs.get("gate-1")[2].keys() == {"site", "role:display", "device"}


def test_unknown_device_takes_its_role_from_the_registry(db: Path, configs):
    with pytest.raises(UnknownDevice, match="never connected"):
        configs.set("gate-3", ["gate.debounce=1.0"], 0, now=T)

    with SqliteStorage(db) as store:
        store.apply_status(
            protocol.Status(device="gate-3", role="gate", state="online", epoch=1, ts=T), T
        )
    with pytest.raises(ConfigConflict):
        configs.set("gate-3", ["gate.debounce=1.0"], 1, now=T)
    change = configs.set("gate-3", ["gate.debounce=1.0"], 0, now=T)
    assert change.version == 1
    assert configs.get("gate-3")[1] == {"gate": {"debounce": 1.0}}


def test_the_cli_and_the_service_write_the_same_file(db: Path, configs):
    with DesiredConfigs(db) as cli:
        cli.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    assert configs.get("gate-1")[0] == 2
    assert configs.unpublished() == [("gate-1", 2), ("gate-2", 1)]


def test_a_connection_can_be_shared(db: Path):
    conn = sqlite3.connect(db, isolation_level=None)
    configs = DesiredConfigs(conn)
    configs.add_device("gate-1", "gate", now=T)
    configs.close()  # leaves a borrowed connection open
    assert conn.execute("SELECT COUNT(*) FROM devcfg_devices").fetchone()[0] == 1
    conn.close()


# ------------------------------------------------------------- service side


def test_desired_message_is_signed_and_accepted_by_the_device(configs):
    configs.set("gate-1", ["gate.relay_pulse=2.5"], 1, now=T)
    msg = configs.desired_message("gate-1", KEY)

    wire = protocol.decode(protocol.ConfigDesired, protocol.encode(msg))
    assert wire.version == 2 and wire.device == "gate-1"
    verdict = check(wire, KEY.public_key(), "gate-1", BOOT, applied_version=1)
    assert verdict.accepted and verdict.config is not None
    assert verdict.config.gate.relay_pulse == 2.5
    # the same message is foreign to another gate
    other = check(wire, KEY.public_key(), "gate-2", BOOT)
    assert other.code == ConfigCode.REJECTED_WRONG_DEVICE
    assert signing.verify(
        KEY.public_key(), signing.config_payload("gate-1", 2, wire.document), wire.signature
    )


def test_unpublished_and_removed(configs):
    assert configs.unpublished() == [("gate-1", 1), ("gate-2", 1)]
    configs.mark_published("gate-1", 1)
    configs.mark_published("gate-2", 1)
    assert configs.unpublished() == []
    configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    assert configs.unpublished() == [("gate-1", 2)]

    configs.remove_device("gate-2", now=T)
    assert configs.removed_devices() == ["gate-2"]
    configs.mark_cleared("gate-2")
    assert configs.removed_devices() == []
    assert not configs.remove_device("gate-2", now=T)


def test_states_follow_the_reports(configs, db: Path):
    configs.set("gate-1", ["gate.debounce=1.0"], 1, now=T)
    states = {s.device: s for s in configs.states()}
    assert (states["gate-1"].desired_version, states["gate-1"].state) == (2, "pending")

    configs.record_reported(reported("gate-1", 2, "applied", code="config.applied"), now=T)
    configs.set("gate-1", ["gate.debounce=9.0"], 2, now=T)
    configs.record_reported(
        reported(
            "gate-1",
            3,
            "rolled_back",
            ts=T + 5,
            code="config.rolled_back.self_check",
            reason="reader does not answer",
        ),
        now=T + 5,
    )
    # a late report of an older version changes nothing
    assert not configs.record_reported(reported("gate-1", 2, "applied", ts=T + 1), now=T + 6)

    state = {s.device: s for s in config_states(db)}["gate-1"]
    assert (state.desired_version, state.applied_version, state.state) == (3, 2, "rolled_back")
    assert state.reason == "reader does not answer"
    assert state.reported_at == T + 5


def test_read_only_on_a_file_without_the_tables(db: Path):
    SqliteStorage(db).close()
    assert config_states(db) == []
    with DesiredConfigs(db, readonly=True) as configs:
        with pytest.raises(UnknownDevice):
            configs.get("gate-1")
        assert configs.devices() == [] and configs.version("gate-1") == 0


# ------------------------------------------------------------------ pairs


def test_parse_assignments_reads_toml_values():
    assert parse_assignments(
        [
            "gate.relay_pulse=1.5",
            "gate.collects_media=true",
            "drivers.rfid=sim",
            'gate.zone_to="pool"',
            "drivers.gpio.buttons={open = 5}",
            'drivers.sim.buttons=["open", "exit"]',
            "log.level = DEBUG",
            "x.when=2024-01-01",
            "x.gone=",
            'x.empty=""',
        ]
    ) == {
        "gate": {"relay_pulse": 1.5, "collects_media": True, "zone_to": "pool"},
        "drivers": {
            "rfid": "sim",
            "gpio": {"buttons": {"open": 5}},
            "sim": {"buttons": ["open", "exit"]},
        },
        "log": {"level": "DEBUG"},
        "x": {"when": "2024-01-01", "gone": None, "empty": ""},
    }


def test_parse_assignments_lists_every_bad_pair():
    with pytest.raises(ConfigError) as caught:
        parse_assignments(["novalue", "a..b=1", "=1", "a=1", "a.b=2"])
    assert len(caught.value.errors) == 4


def test_an_offline_device_converges_on_the_latest_version(configs):
    from controller.config_apply import check_for
    from controller.config_store import ConfigKeeper

    keeper = ConfigKeeper(sqlite3.connect(":memory:", isolation_level=None))
    public = KEY.public_key()
    first = configs.desired_message("gate-1", KEY)
    assert check_for(keeper, first, public, "gate-1", BOOT).accepted
    keeper.stage(first.version, first.document)
    keeper.commit()

    # three changes while the gate is away; the broker keeps only the last (retained)
    for base, value in ((1, "1.0"), (2, "2.0"), (3, "3.0")):
        configs.set("gate-1", [f"gate.debounce={value}"], base, now=T)
    latest = configs.desired_message("gate-1", KEY)
    verdict = check_for(keeper, latest, public, "gate-1", BOOT)
    assert verdict.accepted and verdict.version == 4
    assert verdict.config is not None and verdict.config.gate.debounce == 3.0
    # an older signed one replayed afterwards is refused
    keeper.stage(verdict.version, latest.document)
    keeper.commit()
    assert check_for(keeper, first, public, "gate-1", BOOT).code == (ConfigCode.REJECTED_NOT_NEWER)
