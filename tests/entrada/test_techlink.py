"""The account the technicians' and staff's tools log in with (entrada.techlink), and the
provisioned files it comes from: a technician's own ``mqtt.toml``, or central's account
with a warning."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
import tomli_w

from central.settings import CentralConfig
from controller.settings import DeviceConfig
from entrada import config, provision, signing
from entrada.errors import ConfigError
from entrada.settings_common import MqttSection
from entrada.techlink import ACCOUNT_ENV, account_mqtt, broker_login

CENTRAL_SECRET = "central-secret-value"
TECH_SECRET = "tech-secret-value"


def central_cfg(**mqtt: object) -> CentralConfig:
    doc = {"central": {"site": "pool"}, "mqtt": {"host": "127.0.0.1", "keepalive": 30, **mqtt}}
    return config.validate(CentralConfig, doc)


def account_file(tmp_path: Path, **mqtt: object) -> Path:
    path = tmp_path / "tech-anna" / "mqtt.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {"host": "broker.pool.lan", "port": 8883, "username": "tech-anna", **mqtt}
    path.write_text(tomli_w.dumps({"mqtt": table}))
    return path


@pytest.fixture
def site(tmp_path: Path):
    return provision.init_site(tmp_path / "site", "pool", ["broker.pool.lan"], plain_port=1884)


# --------------------------------------------------------------------- account files


def test_the_account_replaces_centrals_connection_only(tmp_path):
    path = account_file(tmp_path, password=TECH_SECRET)

    mqtt = account_mqtt(central_cfg(username="central", password=CENTRAL_SECRET).mqtt, path)

    assert (mqtt.host, mqtt.port, mqtt.username) == ("broker.pool.lan", 8883, "tech-anna")
    assert mqtt.password is not None and mqtt.password.get_secret_value() == TECH_SECRET
    assert mqtt.keepalive == 30  # central's own setting


def test_a_ca_not_installed_yet_is_taken_from_beside_the_file(tmp_path):
    path = account_file(tmp_path, tls_ca="/nonexistent/entrada/ca.crt")
    (path.parent / "ca.crt").write_text("ca")

    mqtt = account_mqtt(MqttSection(), path)

    assert mqtt.tls_ca == path.parent / "ca.crt"


def test_a_provisioned_technician_bundle_is_an_account(site):
    bundle = provision.add_service_account(site.path, "tech-anna", "technician")

    mqtt = account_mqtt(MqttSection(), bundle / "mqtt.toml")

    assert (mqtt.username, mqtt.port) == ("tech-anna", 8883)
    assert mqtt.tls_ca is not None and mqtt.tls_ca.is_file()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, "cannot read"),
        ("not = [toml", "cannot read"),
        ('[central]\nsite = "pool"\n', "no \\[mqtt\\] table"),
        ('[mqtt]\nhost = "b"\n', "no \\[mqtt\\] table"),
    ],
)
def test_unusable_account_files_are_named(tmp_path, text, match):
    path = tmp_path / "mqtt.toml"
    if text is not None:
        path.write_text(text)

    with pytest.raises(ConfigError, match=match):
        account_mqtt(MqttSection(), path)


def test_a_bad_value_is_reported_without_the_password(tmp_path):
    path = account_file(tmp_path, port=0, password=TECH_SECRET)

    with pytest.raises(ConfigError, match="port") as info:
        account_mqtt(MqttSection(), path)
    assert TECH_SECRET not in str(info.value)


# ----------------------------------------------------------------------- choosing


def test_the_environment_names_the_account(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ACCOUNT_ENV, str(account_file(tmp_path)))

    mqtt, username = broker_login(central_cfg(password=CENTRAL_SECRET))

    assert (mqtt.username, username) == ("tech-anna", "tech-anna")
    assert capsys.readouterr().err == ""


def test_the_option_beats_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ACCOUNT_ENV, str(tmp_path / "missing.toml"))

    _mqtt, username = broker_login(central_cfg(), account_file(tmp_path))

    assert username == "tech-anna"


def test_centrals_account_with_its_password_comes_with_a_warning(monkeypatch, capsys):
    monkeypatch.delenv(ACCOUNT_ENV, raising=False)

    _mqtt, username = broker_login(central_cfg(password=CENTRAL_SECRET))

    err = capsys.readouterr().err
    assert username == "central"
    assert "warning" in err and "--account" in err and ACCOUNT_ENV in err
    assert CENTRAL_SECRET not in err


def test_an_open_broker_needs_no_warning(monkeypatch, capsys):
    monkeypatch.delenv(ACCOUNT_ENV, raising=False)

    _mqtt, username = broker_login(central_cfg(username="ops"))

    assert username == "ops"
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------ provisioned bundles


def test_a_device_bundle_trusts_the_installed_site_key(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate")

    cfg = config.load(bundle / "device.toml", DeviceConfig)

    assert cfg.device.config_key == Path("/etc/entrada") / signing.PUBLIC_KEY_NAME
    assert (bundle / signing.PUBLIC_KEY_NAME).read_bytes() == site.signing_public.read_bytes()


def test_centrals_bundle_holds_the_signing_key_and_names_it(site):
    bundle = provision.add_service_account(site.path, "central", "central")
    key = bundle / signing.PRIVATE_KEY_NAME

    cfg = config.load(bundle / "mqtt.toml", CentralConfig)

    assert cfg.central.site == "pool"
    assert cfg.central.signing_key == Path("/etc/entrada") / signing.PRIVATE_KEY_NAME
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 1884)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == (site.signing_dir / signing.PRIVATE_KEY_NAME).read_bytes()
    signing.load_private_key(key)


def test_other_service_bundles_never_hold_the_signing_key(site):
    for name, kind in (("tech-anna", "technician"), ("counter-1", "staff")):
        bundle = provision.add_service_account(site.path, name, kind)

        assert sorted(p.name for p in bundle.iterdir()) == ["ca.crt", "mqtt.toml"]
        assert "central" not in tomllib.loads((bundle / "mqtt.toml").read_text())
