"""Provisioning: a site folder's CA and keys, and an MQTT account and bundle per device or
service, with password rotation and revocation.

- :func:`init_site` makes the folder (entrada.site_dir): the site CA, the broker's TLS
  certificate, the config-signing keypair (entrada.signing) and ``site.toml``.
- :func:`provision_device` creates a device's account (a random password, stored only as
  a hash in the registry) and its bundle ``devices/ID/``: ``device.toml`` (id, site, role,
  the installed ``site_signing.pub`` as ``config_key`` so it takes central's signed
  configs, ``[mqtt]`` with the TLS port, username, password and CA path; mode 0600),
  ``ca.crt`` and ``site_signing.pub``. The bundle is copied to the device as
  ``/etc/entrada/``.
- :func:`add_service_account` does the same for central, a staff terminal or a
  technician: ``services/NAME/mqtt.toml`` holds the ``[mqtt]`` table for its config
  (the technicians' and staff's CLIs take it with ``--account``). Central's bundle also
  holds the site's private signing key (``site_signing.key``, 0600) and its ``mqtt.toml``
  a ``[central]`` table naming it (``signing_key``): central signs every desired config.
- :func:`rotate_password` gives an account a new password and rewrites its bundle;
  :func:`revoke` ends an account and deletes its bundle.

After any change the broker's files must be generated again (``entrada broker-config``)
and Mosquitto reloaded (``systemctl reload mosquitto``: a SIGHUP re-reads the password
file and the ACL and drops clients whose password no longer holds).

Device ids and service names share one namespace: a device can never be named like a
service, so the ACL's per-device patterns cannot hand a service's name to a device.
Passwords never reach a log line or the terminal; they exist only in bundles.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from entrada import config as configlib
from entrada import signing
from entrada.brokerconf import hash_password
from entrada.errors import EntradaError
from entrada.protocol import valid_id
from entrada.site_dir import (
    AccountEntry,
    AccountKind,
    DeviceRole,
    SiteDir,
    SiteFile,
    make_ca,
    make_server_cert,
    write_file,
    write_secret,
)

logger = logging.getLogger(__name__)

#: Where a device's bundle is installed (its config file is /etc/entrada/device.toml).
INSTALL_DIR = Path("/etc/entrada")
#: 256 random bits, URL-safe (no quoting trouble in TOML, shells or mosquitto_pub -P).
PASSWORD_BYTES = 32
DEVICE_CONFIG = "device.toml"
SERVICE_CONFIG = "mqtt.toml"

#: Driver defaults written into a new device's config, per role: a Raspberry Pi's real
#: hardware (config/gate.toml). A dispenser also needs its site's services on its buttons.
ROLE_SECTIONS: dict[DeviceRole, dict[str, Any]] = {
    DeviceRole.GATE: {"drivers": {"rfid": "mfrc522", "relay": "gpio", "indicator": "gpio"}},
    DeviceRole.DISPENSER: {"drivers": {"printer": "escpos"}},
    DeviceRole.DISPLAY: {"drivers": {"sound": "pygame"}},
}
ROLE_NOTES: dict[DeviceRole, str] = {
    DeviceRole.DISPENSER: (
        '# A dispenser also needs its buttons: [dispenser] buttons = {NAME = "SERVICE"}.\n'
    ),
}


class ProvisionError(EntradaError):
    """A provisioning request that cannot be carried out (unknown account, taken name...)."""


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


# -------------------------------------------------------------------------- the site


def init_site(
    directory: str | Path,
    site_id: str,
    broker_hosts: Sequence[str],
    *,
    tls_port: int = 8883,
    plain_port: int | None = None,
    max_devices: int = 250,
    now: datetime | None = None,
) -> SiteDir:
    """Create a site folder: CA, broker certificate, signing keypair and ``site.toml``.

    ``directory`` must be absent or empty: a site's CA and signing key are made once."""
    site = SiteDir(directory)
    if site.path.exists() and any(p.name != ".lock" for p in site.path.iterdir()):
        raise ProvisionError(f"{site.path} is not empty: a site folder is made only once")
    if not valid_id(site_id):
        raise ProvisionError(f"invalid site id {site_id!r}")
    if not broker_hosts:
        raise ProvisionError("give at least one broker host name or address")
    settings = configlib.validate(
        SiteFile,
        {
            "site": {"id": site_id},
            "broker": {
                "hosts": list(broker_hosts),
                "tls_port": tls_port,
                "plain_port": plain_port,
                "max_devices": max_devices,
            },
        },
        "site settings",
    )
    when = _now(now)
    with site.locked():
        ca_key, ca_cert = make_ca(site_id, when)
        write_secret(site.ca_key, ca_key)
        write_file(site.ca_cert, ca_cert)
        _write_broker_cert(site, settings.broker.hosts, when)
        signing.generate_keypair(site.signing_dir)
        site.write_accounts({})
        site.write_settings(settings)  # last: its presence marks a complete folder
    logger.info("site %s created in %s (broker %s)", site_id, site.path, ", ".join(broker_hosts))
    return site


def renew_broker_cert(
    directory: str | Path,
    broker_hosts: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> Path:
    """A new broker certificate from the site CA (for new host names, or before expiry).
    Devices keep trusting it: they trust the CA. Returns the certificate's path."""
    site = SiteDir(directory)
    with site.locked():
        settings = site.settings()
        if broker_hosts:
            doc = configlib.as_dict(settings, mask=False)
            doc["broker"]["hosts"] = list(broker_hosts)
            settings = configlib.validate(SiteFile, doc, "site settings")
            site.write_settings(settings)
        _write_broker_cert(site, settings.broker.hosts, _now(now))
    logger.info("broker certificate renewed for %s", ", ".join(settings.broker.hosts))
    return site.broker_cert


def _write_broker_cert(site: SiteDir, hosts: Sequence[str], when: datetime) -> None:
    key, cert = make_server_cert(site.ca_key.read_bytes(), site.ca_cert.read_bytes(), hosts, when)
    write_secret(site.broker_key, key)
    write_file(site.broker_cert, cert)


# ---------------------------------------------------------------------------- bundles


def render_device_config(
    settings: SiteFile,
    device_id: str,
    role: DeviceRole,
    password: str,
    install_dir: Path = INSTALL_DIR,
) -> str:
    """The device's config file: who it is and how it reaches the broker (TLS)."""
    site_id = settings.site.id
    doc: dict[str, Any] = {
        "device": {
            "id": device_id,
            "site": site_id,
            "role": str(role),
            "config_key": str(install_dir / signing.PUBLIC_KEY_NAME),
        },
        "mqtt": {
            "host": settings.broker.hosts[0],
            "port": settings.broker.tls_port,
            "username": device_id,
            "password": password,
            "tls_ca": str(install_dir / "ca.crt"),
        },
        **ROLE_SECTIONS[role],
    }
    head = (
        f"# Device {device_id} ({role}) of site {site_id}: written by `entrada provision`.\n"
        f"# Install this folder as {install_dir}/ on the device; this file is 0600 because it\n"
        "# holds the device's MQTT password. Adjust [drivers] to the hardware, then check it:\n"
        f"#   entrada config check --config {install_dir / DEVICE_CONFIG}\n"
        "# It takes only configs signed by central: config_key is site_signing.pub beside it.\n"
        + ROLE_NOTES.get(role, "")
        + "\n"
    )
    return head + tomli_w.dumps(doc)


def render_service_config(
    settings: SiteFile,
    name: str,
    kind: AccountKind,
    password: str,
    install_dir: Path = INSTALL_DIR,
) -> str:
    """The ``[mqtt]`` table of a service's config file. Central runs on the broker host and
    connects through loopback: the plain loopback listener when there is one, else TLS;
    its file also has a ``[central]`` table with the site and the signing key's path."""
    broker = settings.broker
    if kind == AccountKind.CENTRAL and broker.plain_port is not None:
        mqtt: dict[str, Any] = {"host": "127.0.0.1", "port": broker.plain_port}
    else:
        host = "127.0.0.1" if kind == AccountKind.CENTRAL else broker.hosts[0]
        mqtt = {"host": host, "port": broker.tls_port, "tls_ca": str(install_dir / "ca.crt")}
    mqtt |= {"username": name, "password": password}
    doc: dict[str, Any] = {"mqtt": mqtt}
    head = (
        f"# MQTT account {name} ({kind}) of site {settings.site.id}: written by "
        "`entrada provision --service`.\n"
        "# Copy the [mqtt] table into the service's config file and ca.crt to where tls_ca\n"
        "# points. This file is 0600: it holds the account's password.\n"
    )
    if kind == AccountKind.CENTRAL:
        doc = {
            "central": {
                "site": settings.site.id,
                "signing_key": str(install_dir / signing.PRIVATE_KEY_NAME),
            },
            **doc,
        }
        head += (
            "# Central signs devices' configs: copy the [central] table too, and\n"
            f"# {signing.PRIVATE_KEY_NAME} (0600, readable by central's user only) to where "
            "signing_key points.\n"
        )
    else:
        head += "# Or give this file to `entrada tech` and `entrada queue` with --account.\n"
    return head + "\n" + tomli_w.dumps(doc)


def _write_bundle(
    site: SiteDir,
    settings: SiteFile,
    name: str,
    entry: AccountEntry,
    password: str,
    install_dir: Path,
) -> Path:
    if entry.kind == AccountKind.DEVICE:
        bundle = site.device_bundle(name)
        role = DeviceRole(str(entry.role))
        config = render_device_config(settings, name, role, password, install_dir)
        write_secret(bundle / DEVICE_CONFIG, config)
        write_file(bundle / signing.PUBLIC_KEY_NAME, site.signing_public.read_bytes())
    else:
        bundle = site.service_bundle(name)
        kind = AccountKind(entry.kind)
        write_secret(
            bundle / SERVICE_CONFIG,
            render_service_config(settings, name, kind, password, install_dir),
        )
        if kind == AccountKind.CENTRAL:
            key = site.signing_dir / signing.PRIVATE_KEY_NAME
            write_secret(bundle / signing.PRIVATE_KEY_NAME, key.read_bytes())
    write_file(bundle / "ca.crt", site.ca_cert.read_bytes())
    return bundle


# --------------------------------------------------------------------------- accounts


def _create(
    directory: str | Path,
    name: str,
    kind: AccountKind,
    role: DeviceRole | None,
    install_dir: Path,
    now: datetime | None,
) -> Path:
    if not valid_id(name):
        raise ProvisionError(f"invalid name {name!r}: letters, digits, '_' and '-', up to 64")
    site = SiteDir(directory)
    with site.locked():
        settings = site.settings()
        accounts = site.accounts()
        old = accounts.get(name)
        if old is not None and old.active:
            raise ProvisionError(
                f"{name} already exists ({old.kind}); rotate its password with --rotate, "
                "or revoke it first"
            )
        if old is not None and old.kind != kind:
            raise ProvisionError(f"{name} was a {old.kind}; pick another name")
        when = _now(now)
        password = _new_password()
        entry = AccountEntry(
            kind=kind.value,
            role=role.value if role is not None else None,
            password_hash=hash_password(password),
            created=when,
            rotated=when,
        )
        accounts[name] = entry
        bundle = _write_bundle(site, settings, name, entry, password, install_dir)
        site.write_accounts(accounts)
    return bundle


def provision_device(
    directory: str | Path,
    device_id: str,
    role: DeviceRole | str,
    *,
    install_dir: Path = INSTALL_DIR,
    now: datetime | None = None,
) -> Path:
    """Create a device's account and bundle; returns the bundle folder."""
    try:
        device_role = DeviceRole(role)
    except ValueError as err:
        roles = ", ".join(r.value for r in DeviceRole)
        raise ProvisionError(f"unknown role {role!r} (known: {roles})") from err
    bundle = _create(directory, device_id, AccountKind.DEVICE, device_role, install_dir, now)
    logger.info("provisioned device %s (%s): bundle %s", device_id, device_role, bundle)
    return bundle


def add_service_account(
    directory: str | Path,
    name: str,
    kind: AccountKind | str,
    *,
    install_dir: Path = INSTALL_DIR,
    now: datetime | None = None,
) -> Path:
    """Create a service account (central, staff or technician); returns its bundle folder."""
    try:
        service_kind = AccountKind(kind)
    except ValueError:
        service_kind = AccountKind.DEVICE  # refused just below
    if service_kind == AccountKind.DEVICE:
        raise ProvisionError(f"unknown service kind {kind!r} (known: central, staff, technician)")
    bundle = _create(directory, name, service_kind, None, install_dir, now)
    logger.info("provisioned %s account %s: bundle %s", service_kind, name, bundle)
    return bundle


def rotate_password(
    directory: str | Path,
    name: str,
    *,
    install_dir: Path = INSTALL_DIR,
    now: datetime | None = None,
) -> Path:
    """A new password for an active account; its bundle is written again. Returns it."""
    site = SiteDir(directory)
    with site.locked():
        settings = site.settings()
        accounts = site.accounts()
        old = accounts.get(name)
        if old is None or not old.active:
            raise ProvisionError(f"no active account {name!r}")
        password = _new_password()
        entry = old.model_copy(
            update={"password_hash": hash_password(password), "rotated": _now(now)}
        )
        accounts[name] = entry
        bundle = _write_bundle(site, settings, name, entry, password, install_dir)
        site.write_accounts(accounts)
    logger.info("password of %s (%s) rotated: bundle %s", name, old.kind, bundle)
    return bundle


def revoke(directory: str | Path, name: str, *, now: datetime | None = None) -> None:
    """End an account: its hash is dropped (the record stays, marked revoked) and its
    bundle deleted. The name may be provisioned again later, for the same kind."""
    site = SiteDir(directory)
    with site.locked():
        accounts = site.accounts()
        old = accounts.get(name)
        if old is None or old.revoked is not None:
            raise ProvisionError(f"no active account {name!r}")
        accounts[name] = old.model_copy(update={"password_hash": "", "revoked": _now(now)})
        site.write_accounts(accounts)
        bundle = site.device_bundle(name) if old.kind == "device" else site.service_bundle(name)
        shutil.rmtree(bundle, ignore_errors=True)
    logger.info("%s %s revoked", old.kind, name)


def list_accounts(directory: str | Path) -> dict[str, AccountEntry]:
    """Every account of the site, revoked ones included."""
    site = SiteDir(directory)
    site.settings()  # a clear error when this is not a site folder
    return site.accounts()
