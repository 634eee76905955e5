"""The device's checks of a desired config and its applied / last-good keeper."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.config_apply import (
    ConfigCode,
    ConfigKeeper,
    FailedConfig,
    check,
    check_for,
    deep_merge,
    document_problems,
    effective,
    load_bootstrap,
    mask_reason,
    mask_secrets,
    report,
)
from entrada import protocol, signing
from entrada.errors import StoreError

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
SECRET = "hunter2-very-secret"
BOOT = {
    "device": {"id": "gate-1", "site": "test", "role": "gate", "data_dir": "/var/lib/x"},
    "mqtt": {"host": "broker.local", "password": SECRET},
    "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim"},
}


def desired(
    document: dict, version: int = 1, device: str = "gate-1", *, key=KEY, sign_as=None
) -> protocol.ConfigDesired:
    payload = signing.config_payload(*(sign_as or (device, version, document)))
    return protocol.ConfigDesired(
        device=device, version=version, document=document, signature=signing.sign(key, payload)
    )


@pytest.fixture
def conn(tmp_path: Path):
    c = sqlite3.connect(tmp_path / "device.db", isolation_level=None)
    yield c
    c.close()


# ------------------------------------------------------------------ check


def test_accepted_is_bootstrap_with_document_laid_over():
    v = check(desired({"gate": {"relay_pulse": 2.5}}, 3), PUBLIC, "gate-1", BOOT)

    assert v.accepted and v.code == ConfigCode.ACCEPTED and v.state is None
    assert v.config is not None
    assert v.config.gate.relay_pulse == 2.5
    assert v.config.device.id == "gate-1"
    assert v.config.mqtt.host == "broker.local"
    assert v.document == {"gate": {"relay_pulse": 2.5}}
    assert v.version == 3


def _code(verdict) -> str:
    assert not verdict.accepted
    assert verdict.config is None
    return str(verdict.code)


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        (
            protocol.ConfigDesired(device="gate-1", version=2, document={}),
            ConfigCode.REJECTED_UNSIGNED,
            "not signed",
        ),
        (
            desired({"gate": {"relay_pulse": 9.0}}, 2, sign_as=("gate-1", 2, {})),
            ConfigCode.REJECTED_BAD_SIGNATURE,
            "signature",
        ),
        (
            desired({}, 2, key=Ed25519PrivateKey.generate()),
            ConfigCode.REJECTED_BAD_SIGNATURE,
            "signature",
        ),
        (desired({}, 2, device="gate-2"), ConfigCode.REJECTED_WRONG_DEVICE, "gate-2"),
        (
            desired({}, 2, sign_as=("gate-2", 2, {})),
            ConfigCode.REJECTED_BAD_SIGNATURE,
            "signature",
        ),
        (
            desired({}, 2, sign_as=("gate-1", 3, {})),
            ConfigCode.REJECTED_BAD_SIGNATURE,
            "signature",
        ),
        (desired({"mqtt": {"host": "evil"}}, 9), ConfigCode.REJECTED_LOCAL_ONLY, "mqtt"),
        (desired({"device": {"id": "gate-9"}}, 9), ConfigCode.REJECTED_LOCAL_ONLY, "device.id"),
        (
            desired({"device": {"data_dir": "/tmp"}}, 9),
            ConfigCode.REJECTED_LOCAL_ONLY,
            "device.data_dir",
        ),
        (
            desired({"gate": {"relay_pulse": 999.0}}, 9),
            ConfigCode.REJECTED_SCHEMA,
            "gate.relay_pulse",
        ),
        (
            desired({"gate": {"relay_puls": 1.0}}, 9),
            ConfigCode.REJECTED_SCHEMA,
            "did you mean 'relay_pulse'",
        ),
        (desired({"gate": {"relay_pulse": "1"}}, 9), ConfigCode.REJECTED_SCHEMA, "relay_pulse"),
        (desired({"gate": 5}, 9), ConfigCode.REJECTED_SCHEMA, "gate"),
        (
            desired({"drivers": {"serial": {"port": "x" * 5000}}}, 9),
            ConfigCode.REJECTED_SCHEMA,
            "5000 characters",
        ),
        (
            desired({"gate": {"zone_to": ["x" * 1000] * 80}}, 9),
            ConfigCode.REJECTED_TOO_LARGE,
            "bytes",
        ),
        (desired({}, 4), ConfigCode.REJECTED_NOT_NEWER, "older"),
    ],
)
def test_refused(message, code, words):
    v = check(message, PUBLIC, "gate-1", BOOT, applied_version=5)

    assert _code(v) == code
    assert v.state == "rejected"
    assert words in v.reason
    assert v.version == message.version


def test_no_key_refuses_everything():
    v = check(desired({}, 2), None, "gate-1", BOOT)
    assert _code(v) == ConfigCode.REJECTED_NO_KEY


def test_the_version_that_runs_is_current_not_a_rejection():
    v = check(desired({}, 5), PUBLIC, "gate-1", BOOT, applied_version=5)
    assert v.code == ConfigCode.CURRENT and v.state == "applied" and not v.accepted


def test_a_version_rolled_back_here_is_not_tried_again():
    failed = FailedConfig(6, ConfigCode.ROLLED_BACK_SELF_CHECK, "reader does not answer")
    v = check(desired({}, 6), PUBLIC, "gate-1", BOOT, applied_version=5, failed=failed)
    assert v.code == ConfigCode.ROLLED_BACK_SELF_CHECK
    assert v.state == "rolled_back" and v.reason == "reader does not answer"

    older = check(desired({}, 5), PUBLIC, "gate-1", BOOT, applied_version=4, failed=failed)
    assert _code(older) == ConfigCode.REJECTED_NOT_NEWER

    newer = check(desired({}, 7), PUBLIC, "gate-1", BOOT, applied_version=5, failed=failed)
    assert newer.accepted


def test_cross_field_rules_are_judged_with_the_device_file():
    doc = {"gate": {"admission": "tariffs", "direction": "in"}}
    v = check(desired(doc, 2), PUBLIC, "gate-1", BOOT)
    assert _code(v) == ConfigCode.REJECTED_SCHEMA and "zone_to" in v.reason

    with_zone = deep_merge(BOOT, {"gate": {"zone_to": "pool"}})
    assert check(desired(doc, 2), PUBLIC, "gate-1", with_zone).accepted


def test_many_errors_are_all_listed_but_bounded():
    doc = {"gate": {f"k{i}": i for i in range(40)}}
    v = check(desired(doc, 2), PUBLIC, "gate-1", BOOT)
    assert _code(v) == ConfigCode.REJECTED_SCHEMA
    assert "and 30 more" in v.reason
    assert len(v.reason) <= 2000


# ---------------------------------------------------------------- secrets


def test_secret_values_never_appear_in_reasons():
    doc = {"mqtt": {"password": "an0ther-secret"}, "gate": {"api_token": "t0ken-value-x"}}
    v = check(desired(doc, 2), PUBLIC, "gate-1", BOOT)
    assert _code(v) == ConfigCode.REJECTED_LOCAL_ONLY
    assert "an0ther-secret" not in v.reason and SECRET not in v.reason

    bad_type = {"gate": {"token": 123456}}
    v = check(desired(bad_type, 2), PUBLIC, "gate-1", BOOT)
    assert "123456" not in v.reason

    # a value that happens to equal the device's secret, in a non-secret key
    leak = {"gate": {"zone_to": SECRET}}
    v = check(desired(leak, 2), PUBLIC, "gate-1", BOOT)
    assert SECRET not in v.reason


def test_report_masks_secrets_of_the_given_documents():
    msg = report(
        "gate-1",
        "rolled_back",
        4,
        ConfigCode.ROLLED_BACK_APPLY_FAILED,
        f"cannot connect with password {SECRET}",
        100.0,
        hide=[BOOT],
    )
    assert SECRET not in (msg.reason or "")
    assert "********" in (msg.reason or "")
    assert msg.state == "rolled_back" and msg.code == "config.rolled_back.apply_failed"
    protocol.decode(protocol.ConfigReported, protocol.encode(msg))


def test_report_cuts_long_reasons_to_the_protocol_limit():
    msg = report("gate-1", "rejected", 4, ConfigCode.REJECTED_SCHEMA, "x" * 5000, 1.0)
    assert len(msg.reason or "") == 2000


def test_verdict_report():
    v = check(desired({}, 2, device="gate-2"), PUBLIC, "gate-1", BOOT)
    msg = v.report("gate-1", 50.0)
    assert (msg.device, msg.version, msg.state, msg.code) == (
        "gate-1",
        2,
        "rejected",
        "config.rejected.wrong_device",
    )
    with pytest.raises(ValueError):
        check(desired({}, 2), PUBLIC, "gate-1", BOOT).report("gate-1", 1.0)


def test_mask_secrets_and_mask_reason():
    assert mask_secrets({"mqtt": {"password": "p", "host": "h"}, "x": [{"api_key": 1}]}) == {
        "mqtt": {"password": "********", "host": "h"},
        "x": [{"api_key": "********"}],
    }
    assert mask_reason("a 'sec\\nret' b", ["sec\nret"]) == "a '********' b"


# ------------------------------------------------------------- documents


def test_deep_merge_tables_merge_values_replace():
    assert deep_merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "d": {"e": 1}}) == {
        "a": {"b": 1, "c": [2]},
        "d": {"e": 1},
    }


def test_document_problems():
    assert document_problems({"gate": {"relay_pulse": 1.0}}) is None
    assert document_problems([1]) == (ConfigCode.REJECTED_SCHEMA, ["the document is not a table"])
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["x"] = {}
        node = node["x"]
    code, _errors = document_problems(deep) or (None, None)
    assert code == ConfigCode.REJECTED_SCHEMA
    code, errors = document_problems({"gate": {"x": float("nan")}}) or (None, [])
    assert code == ConfigCode.REJECTED_SCHEMA and "JSON" in errors[0]


def test_effective_and_load_bootstrap(tmp_path: Path):
    path = tmp_path / "gate.toml"
    path.write_text(
        '[device]\nid = "gate-1"\nsite = "test"\nrole = "gate"\n'
        '[drivers]\nrfid = "sim"\nrelay = "sim"\nindicator = "sim"\n'
    )
    boot = load_bootstrap(path)
    assert effective(boot, {"log": {"level": "DEBUG"}}).log.level == "DEBUG"


# ----------------------------------------------------------------- keeper


def test_keeper_starts_with_nothing(conn):
    keeper = ConfigKeeper(conn)
    assert keeper.applied_version == 0
    assert keeper.applied.document == {} and keeper.last_good.version == 0
    assert keeper.failed is None and not keeper.pending


def test_stage_commit_roll_back(conn):
    keeper = ConfigKeeper(conn)
    keeper.stage(3, {"gate": {"relay_pulse": 2.0}})
    assert keeper.pending and keeper.applied_version == 3 and keeper.last_good.version == 0

    assert keeper.commit().version == 3
    assert not keeper.pending and keeper.last_good.document == {"gate": {"relay_pulse": 2.0}}

    keeper.stage(5, {"gate": {"relay_pulse": 3.0}})
    good = keeper.roll_back(ConfigCode.ROLLED_BACK_SELF_CHECK, "reader does not answer")
    assert good.version == 3 and good.document == {"gate": {"relay_pulse": 2.0}}
    assert keeper.applied_version == 3 and not keeper.pending
    assert keeper.failed == FailedConfig(
        5, "config.rolled_back.self_check", "reader does not answer"
    )


def test_stage_refuses_old_versions_and_overlapping_applies(conn):
    keeper = ConfigKeeper(conn)
    keeper.stage(3, {})
    with pytest.raises(StoreError, match="still being applied"):
        keeper.stage(4, {})
    keeper.commit()
    with pytest.raises(StoreError, match="not newer"):
        keeper.stage(3, {})


def test_state_survives_a_restart(tmp_path: Path):
    path = tmp_path / "device.db"
    c = sqlite3.connect(path, isolation_level=None)
    keeper = ConfigKeeper(c)
    keeper.stage(2, {"log": {"level": "DEBUG"}})
    keeper.commit()
    keeper.stage(3, {"log": {"level": "ERROR"}})
    c.close()  # the device stops in the middle of applying version 3

    c = sqlite3.connect(path, isolation_level=None)
    keeper = ConfigKeeper(c)
    assert keeper.pending
    failed = keeper.recover(ConfigCode.ROLLED_BACK_INTERRUPTED, "restarted while applying")
    assert failed == FailedConfig(3, "config.rolled_back.interrupted", "restarted while applying")
    assert keeper.applied == keeper.last_good
    assert keeper.applied.document == {"log": {"level": "DEBUG"}}
    assert keeper.recover(ConfigCode.ROLLED_BACK_INTERRUPTED, "again") is None
    c.close()


def test_check_for_uses_what_the_keeper_holds(conn):
    keeper = ConfigKeeper(conn)
    keeper.stage(4, {})
    keeper.commit()
    assert check_for(keeper, desired({}, 4), PUBLIC, "gate-1", BOOT).code == ConfigCode.CURRENT
    assert check_for(keeper, desired({}, 3), PUBLIC, "gate-1", BOOT).code == (
        ConfigCode.REJECTED_NOT_NEWER
    )
    assert check_for(keeper, desired({}, 5), PUBLIC, "gate-1", BOOT).accepted


def test_keeper_writes_inside_a_callers_transaction(conn):
    keeper = ConfigKeeper(conn)
    conn.execute("BEGIN IMMEDIATE")
    keeper.stage(1, {})
    conn.execute("ROLLBACK")
    assert keeper.applied_version == 0


def test_a_failed_write_leaves_nothing_half_done(conn):
    keeper = ConfigKeeper(conn)
    keeper.stage(1, {"a": 1})
    keeper.commit()
    keeper.stage(2, {"a": 2})
    conn.execute(
        "CREATE TRIGGER no_failed BEFORE INSERT ON config_slots WHEN NEW.slot = 'failed' "
        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    with pytest.raises(StoreError):
        keeper.roll_back("x", "y")
    assert keeper.applied_version == 2 and keeper.pending and keeper.failed is None


def test_runtime_flow_rollback_then_redelivery_then_newer(conn):
    """What the runtime does: stage, self-check fails, roll back, report; the same
    retained version seen again after a reconnect is not tried again."""
    keeper = ConfigKeeper(conn)
    keeper.stage(1, {"gate": {"relay_pulse": 1.5}})
    keeper.commit()

    msg = desired({"drivers": {"rfid": "serial"}}, 2)
    verdict = check_for(keeper, msg, PUBLIC, "gate-1", BOOT)
    assert verdict.accepted and verdict.document is not None
    keeper.stage(verdict.version, verdict.document)
    good = keeper.roll_back(ConfigCode.ROLLED_BACK_SELF_CHECK, "the reader does not answer")
    assert effective(BOOT, good.document).gate.relay_pulse == 1.5
    sent = report(
        "gate-1",
        "rolled_back",
        2,
        ConfigCode.ROLLED_BACK_SELF_CHECK,
        "the reader does not answer",
        10.0,
        hide=[BOOT, verdict.document],
    )
    assert sent.state == "rolled_back"

    again = check_for(keeper, msg, PUBLIC, "gate-1", BOOT)
    assert not again.accepted
    assert again.report("gate-1", 20.0).model_dump(exclude={"ts"}) == sent.model_dump(
        exclude={"ts"}
    )
    assert check_for(keeper, desired({}, 3), PUBLIC, "gate-1", BOOT).accepted
