"""Site folders, device and service accounts, their bundles, and the CLI that makes them."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from central.settings import CentralConfig
from controller.settings import DeviceConfig
from entrada import cli, cli_provision, config, provision
from entrada.brokerconf import verify_password
from entrada.config import MASK
from entrada.errors import ConfigError
from entrada.provision import ProvisionError
from entrada.signing import SigningError, generate_keypair
from entrada.site_dir import SiteDir, SiteDirError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def mqtt_of(path: Path) -> dict:
    return tomllib.loads(path.read_text())["mqtt"]


@pytest.fixture
def site(tmp_path) -> SiteDir:
    return provision.init_site(tmp_path / "site", "pool", ["broker.pool.lan", "10.0.0.5"], now=NOW)


# ------------------------------------------------------------------------ init


def test_init_makes_the_layout_with_secrets_private(site):
    assert site.settings().site.id == "pool"
    assert site.settings().broker.hosts == ["broker.pool.lan", "10.0.0.5"]
    assert site.settings().broker.tls_port == 8883
    assert site.settings().broker.plain_port is None
    for secret in (site.ca_key, site.broker_key, site.signing_dir / "site_signing.key"):
        assert mode(secret) == 0o600, secret
    assert site.signing_public.is_file()
    assert site.accounts() == {}


def test_broker_certificate_is_signed_by_the_ca_for_every_host(site):
    ca = x509.load_pem_x509_certificate(site.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(site.broker_cert.read_bytes())

    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"broker.pool.lan", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("127.0.0.1"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc == NOW - timedelta(hours=1)


def test_init_refuses_a_folder_that_is_not_empty(site):
    with pytest.raises(ProvisionError, match="not empty"):
        provision.init_site(site.path, "pool", ["broker"])


@pytest.mark.parametrize(
    ("site_id", "hosts", "match"),
    [("no/slash", ["broker"], "invalid site id"), ("pool", [], "at least one broker host")],
)
def test_init_refuses_bad_arguments(tmp_path, site_id, hosts, match):
    with pytest.raises(ProvisionError, match=match):
        provision.init_site(tmp_path / "s", site_id, hosts)


def test_init_refuses_a_host_that_is_not_a_name(tmp_path):
    with pytest.raises(ConfigError, match=r"broker\.hosts\.0"):
        provision.init_site(tmp_path / "s", "pool", ["bad host name"])


def test_init_never_overwrites_a_signing_key(tmp_path):
    (tmp_path / "s" / "signing").mkdir(parents=True)
    (tmp_path / "s" / "signing" / "site_signing.key").write_text("old")

    with pytest.raises(ProvisionError, match="not empty"):
        provision.init_site(tmp_path / "s", "pool", ["broker"])
    assert (tmp_path / "s" / "signing" / "site_signing.key").read_text() == "old"


def test_renew_broker_cert_takes_new_hosts(site):
    old = site.broker_cert.read_bytes()

    provision.renew_broker_cert(site.path, ["gw.pool.lan"], now=NOW)

    cert = x509.load_pem_x509_certificate(site.broker_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert site.broker_cert.read_bytes() != old
    assert set(san.get_values_for_type(x509.DNSName)) == {"gw.pool.lan", "localhost"}
    assert site.settings().broker.hosts == ["gw.pool.lan"]


def test_a_folder_without_site_toml_is_named_as_such(tmp_path):
    with pytest.raises(SiteDirError, match="not a site folder"):
        provision.provision_device(tmp_path, "gate-1", "gate")


# ---------------------------------------------------------------------- devices


def test_device_bundle_holds_config_ca_and_signing_key(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate", now=NOW)

    assert bundle == site.device_bundle("gate-1")
    assert sorted(p.name for p in bundle.iterdir()) == [
        "ca.crt",
        "device.toml",
        "site_signing.pub",
    ]
    assert mode(bundle / "device.toml") == 0o600
    assert (bundle / "ca.crt").read_bytes() == site.ca_cert.read_bytes()
    assert (bundle / "site_signing.pub").read_bytes() == site.signing_public.read_bytes()


def test_gate_config_is_valid_and_reaches_the_broker_over_tls(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate")

    cfg = config.load(bundle / "device.toml", DeviceConfig)

    assert (cfg.device.id, cfg.device.site, cfg.device.role) == ("gate-1", "pool", "gate")
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.username) == ("broker.pool.lan", 8883, "gate-1")
    assert cfg.mqtt.tls_ca == Path("/etc/entrada/ca.crt")
    assert cfg.mqtt.password is not None


def test_display_config_is_valid(site):
    bundle = provision.provision_device(site.path, "board-1", "display")

    cfg = config.load(bundle / "device.toml", DeviceConfig)

    assert (cfg.device.role, cfg.drivers.sound, cfg.mqtt.username) == (
        "display",
        "pygame",
        "board-1",
    )


def test_dispenser_config_asks_only_for_its_buttons(site):
    path = provision.provision_device(site.path, "disp-1", "dispenser") / "device.toml"

    with pytest.raises(ConfigError, match=r"dispenser\.buttons"):
        config.load(path, DeviceConfig)
    assert "[dispenser] buttons" in path.read_text()
    cfg = config.loads(
        path.read_text() + '\n[dispenser]\nbuttons = {a = "cashier"}\n', DeviceConfig
    )
    assert (cfg.drivers.printer, cfg.mqtt.port) == ("escpos", 8883)


def test_registry_keeps_the_hash_and_never_the_password(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate", now=NOW)
    secret = mqtt_of(bundle / "device.toml")["password"]

    entry = site.accounts()["gate-1"]

    assert (entry.kind, entry.role, entry.created, entry.active) == ("device", "gate", NOW, True)
    assert verify_password(secret, entry.password_hash)
    assert mode(site.accounts_toml) == 0o600
    holders = [p for p in site.path.rglob("*") if p.is_file() and secret in p.read_text()]
    assert holders == [bundle / "device.toml"]


def test_passwords_are_long_and_random(site):
    secrets_ = {
        mqtt_of(provision.provision_device(site.path, f"gate-{i}", "gate") / "device.toml")[
            "password"
        ]
        for i in range(5)
    }
    assert len(secrets_) == 5
    assert min(len(s) for s in secrets_) >= 43  # 256 bits, base64url


def test_a_name_is_provisioned_once(site):
    provision.provision_device(site.path, "gate-1", "gate")

    with pytest.raises(ProvisionError, match="already exists"):
        provision.provision_device(site.path, "gate-1", "gate")
    with pytest.raises(ProvisionError, match="already exists"):
        provision.add_service_account(site.path, "gate-1", "technician")


def test_a_device_cannot_take_a_service_name(site):
    provision.add_service_account(site.path, "central", "central")

    with pytest.raises(ProvisionError, match="already exists"):
        provision.provision_device(site.path, "central", "gate")


@pytest.mark.parametrize(
    ("name", "role", "match"),
    [
        ("gate/1", "gate", "invalid name"),
        ("gate+", "gate", "invalid name"),
        ("", "gate", "invalid name"),
        ("gate-1", "turnstile", "unknown role"),
    ],
)
def test_bad_device_requests_are_refused(site, name, role, match):
    with pytest.raises(ProvisionError, match=match):
        provision.provision_device(site.path, name, role)
    assert site.accounts() == {}


def test_unknown_service_kind_is_refused(site):
    with pytest.raises(ProvisionError, match="unknown service kind"):
        provision.add_service_account(site.path, "x", "device")


# -------------------------------------------------------------------- services


def test_central_uses_loopback_tls_without_a_plain_listener(site):
    bundle = provision.add_service_account(site.path, "central", "central")

    mqtt = mqtt_of(bundle / "mqtt.toml")

    assert (mqtt["host"], mqtt["port"], mqtt["username"]) == ("127.0.0.1", 8883, "central")
    assert mqtt["tls_ca"] == "/etc/entrada/ca.crt"
    assert mode(bundle / "mqtt.toml") == 0o600


def test_central_uses_the_plain_loopback_listener_when_there_is_one(tmp_path):
    site = provision.init_site(tmp_path / "s", "pool", ["broker"], plain_port=1884)

    mqtt = mqtt_of(provision.add_service_account(site.path, "central", "central") / "mqtt.toml")

    assert (mqtt["host"], mqtt["port"]) == ("127.0.0.1", 1884)
    assert "tls_ca" not in mqtt


def test_service_mqtt_table_fits_central_config(site, tmp_path):
    bundle = provision.add_service_account(site.path, "tech-anna", "technician")
    text = (bundle / "mqtt.toml").read_text()

    cfg = config.loads('[central]\nsite = "pool"\n' + text, CentralConfig)

    assert (cfg.mqtt.host, cfg.mqtt.username) == ("broker.pool.lan", "tech-anna")
    assert site.accounts()["tech-anna"].kind == "technician"


# --------------------------------------------------------- rotation, revocation


def test_rotation_gives_a_new_password_and_bundle(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate", now=NOW)
    old = mqtt_of(bundle / "device.toml")["password"]
    later = NOW + timedelta(days=30)

    provision.rotate_password(site.path, "gate-1", now=later)

    new = mqtt_of(bundle / "device.toml")["password"]
    entry = site.accounts()["gate-1"]
    assert new != old
    assert verify_password(new, entry.password_hash)
    assert not verify_password(old, entry.password_hash)
    assert (entry.created, entry.rotated) == (NOW, later)


def test_revocation_drops_hash_and_bundle(site):
    provision.provision_device(site.path, "gate-1", "gate")

    provision.revoke(site.path, "gate-1", now=NOW)

    entry = site.accounts()["gate-1"]
    assert (entry.active, entry.password_hash, entry.revoked) == (False, "", NOW)
    assert not site.device_bundle("gate-1").exists()
    with pytest.raises(ProvisionError, match="no active account"):
        provision.rotate_password(site.path, "gate-1")
    with pytest.raises(ProvisionError, match="no active account"):
        provision.revoke(site.path, "gate-1")


def test_a_revoked_name_may_return_as_the_same_kind_only(site):
    provision.provision_device(site.path, "gate-1", "gate")
    provision.revoke(site.path, "gate-1")

    with pytest.raises(ProvisionError, match="was a device"):
        provision.add_service_account(site.path, "gate-1", "staff")
    provision.provision_device(site.path, "gate-1", "gate")
    assert site.accounts()["gate-1"].active


def test_unknown_account_cannot_be_rotated_or_revoked(site):
    with pytest.raises(ProvisionError):
        provision.rotate_password(site.path, "nobody")
    with pytest.raises(ProvisionError):
        provision.revoke(site.path, "nobody")


# --------------------------------------------------------------------- secrets


def test_provisioning_logs_no_password(site, caplog):
    caplog.set_level(logging.DEBUG)

    bundles = [
        provision.provision_device(site.path, "gate-1", "gate"),
        provision.add_service_account(site.path, "central", "central"),
        provision.rotate_password(site.path, "gate-1"),
    ]

    assert "gate-1" in caplog.text
    for path in (bundles[0] / "device.toml", bundles[1] / "mqtt.toml"):
        assert mqtt_of(path)["password"] not in caplog.text


def test_config_show_masks_the_provisioned_password(site, capsys):
    bundle = provision.provision_device(site.path, "gate-1", "gate")
    secret = mqtt_of(bundle / "device.toml")["password"]

    assert cli.main(["config", "show", "--config", str(bundle / "device.toml")]) == 0

    out = capsys.readouterr().out
    assert secret not in out
    assert f'password = "{MASK}"' in out


def test_the_config_as_data_masks_the_password(site):
    # what a device reports of its config (config/reported, diagnostics) is built this way
    bundle = provision.provision_device(site.path, "gate-1", "gate")
    secret = mqtt_of(bundle / "device.toml")["password"]

    data = config.as_dict(config.load(bundle / "device.toml", DeviceConfig))

    assert data["mqtt"]["password"] == MASK
    assert secret not in json.dumps(data)


def test_a_config_error_never_echoes_the_password(site):
    bundle = provision.provision_device(site.path, "gate-1", "gate")
    path = bundle / "device.toml"
    secret = mqtt_of(path)["password"]
    path.write_text(path.read_text().replace(f'"{secret}"', f'["{secret}"]'))

    with pytest.raises(ConfigError) as info:
        config.load(path, DeviceConfig)

    assert "mqtt.password" in str(info.value)
    assert secret not in str(info.value)


# ------------------------------------------------------------------------- CLI


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="entrada")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_provision.register(sub)
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_cli_site_init_provision_and_list(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "site"
    assert run("site", "init", str(folder), "--site", "pool", "--broker-host", "b1") == 0
    monkeypatch.setenv("ENTRADA_SITE_DIR", str(folder))

    assert run("provision", "gate-1", "--role", "gate") == 0
    assert run("provision", "--service", "counter-1", "--kind", "staff") == 0
    assert run("provision", "gate-1", "--rotate") == 0
    assert run("provision", "--service", "counter-1", "--revoke") == 0
    assert run("provision", "--list") == 0

    out = capsys.readouterr().out
    assert "gate-1: bundle" in out
    secret = mqtt_of(folder / "devices" / "gate-1" / "device.toml")["password"]
    assert secret not in out
    listing = out[out.index("name ") :].splitlines()
    assert listing[1].split()[:4] == ["counter-1", "staff", "-", "revoked"]
    assert listing[2].split()[:4] == ["gate-1", "device", "gate", "active"]


def test_cli_site_dir_option_beats_the_environment(tmp_path, monkeypatch):
    provision.init_site(tmp_path / "a", "pool", ["b"])
    monkeypatch.setenv("ENTRADA_SITE_DIR", str(tmp_path / "elsewhere"))

    assert run("provision", "gate-1", "--role", "gate", "--site-dir", str(tmp_path / "a")) == 0
    assert (tmp_path / "a" / "devices" / "gate-1" / "device.toml").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["provision"], "DEVICE id or --service"),
        (["provision", "gate-1"], "needs --role"),
        (["provision", "--service", "x"], "needs --kind"),
        (["provision", "gate-1", "--service", "x", "--kind", "staff"], "either DEVICE"),
    ],
)
def test_cli_usage_errors(tmp_path, capsys, argv, message):
    provision.init_site(tmp_path / "s", "pool", ["b"])

    assert run(*argv, "--site-dir", str(tmp_path / "s")) == 2
    assert message in capsys.readouterr().err


def test_cli_site_init_refuses_a_bad_port():
    with pytest.raises(SystemExit):
        run("site", "init", "x", "--site", "pool", "--broker-host", "b", "--tls-port", "0")


def test_the_site_signing_keys_are_never_made_twice(site):
    with pytest.raises(SigningError, match="refusing to overwrite"):
        generate_keypair(site.signing_dir)
