"""A site folder: what provisioning knows about one site, kept on the admin's machine.

::

    SITE/
      site.toml               [site] id; [broker] host names, ports, queue sizing
      accounts.toml           every MQTT account: kind, role, PBKDF2 hash (never a password)
      ca/ca.key, ca.crt       the site CA (the key signs the broker's certificate only)
      ca/broker.key, .crt     the broker's TLS certificate: SANs for its host names,
                              localhost and 127.0.0.1
      signing/                the config-signing keypair (entrada.signing):
                              site_signing.key, site_signing.pub
      devices/ID/             a device's bundle: device.toml, ca.crt, site_signing.pub
      services/NAME/          a service account's bundle: mqtt.toml, ca.crt
      .lock                   held while a command changes the folder

Secrets (keys, bundles holding a password) are written 0600 and replaced atomically; a
password exists in plain text only in its bundle, the registry keeps its hash. The folder
is the site's root of trust: keep it off the broker host, with a backup.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import Field

from entrada import config as configlib
from entrada.config import Section, option
from entrada.errors import EntradaError
from entrada.protocol import ID_PATTERN

#: The site CA outlives many broker certificates; renewing it means re-provisioning.
CA_VALIDITY = timedelta(days=20 * 365)
BROKER_CERT_VALIDITY = timedelta(days=5 * 365)
#: Certificates start an hour back, so a device whose clock lags a little accepts them.
BACKDATE = timedelta(hours=1)
#: Always in the broker certificate: central on the broker host connects through loopback.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
#: A host name or an IPv4/IPv6 address.
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9:][A-Za-z0-9.:-]{0,252}$")]


class SiteDirError(EntradaError):
    """The site folder is missing, incomplete or inconsistent."""


class AccountKind(StrEnum):
    DEVICE = "device"
    CENTRAL = "central"
    STAFF = "staff"
    TECHNICIAN = "technician"


class DeviceRole(StrEnum):
    GATE = "gate"
    DISPENSER = "dispenser"
    DISPLAY = "display"


# ------------------------------------------------------------------------- site.toml


class SiteSection(Section):
    id: str = option(..., "Site id: the second level of every topic.", pattern=ID_PATTERN)


class BrokerSection(Section):
    """The site broker as devices and services see it."""

    hosts: list[HostName] = option(
        ...,
        "Names and addresses devices use to reach the broker; the first is written into "
        "bundles, all go into the broker certificate.",
    )
    tls_port: int = option(8883, "TLS listener (every device and remote service).", ge=1, le=65535)
    plain_port: int | None = option(
        None,
        "Plain listener bound to 127.0.0.1 only, for central on the broker host; unset: none.",
        ge=1,
        le=65535,
    )
    max_devices: int = option(
        250, "Devices the queue limits are sized for (see entrada.brokerconf).", ge=1, le=100000
    )
    max_queued_mb: int | None = option(
        None,
        "Most bytes queued for one client: the broker's memory bound for a slow or absent "
        "subscriber; unset: sized from max_devices.",
        unit="MiB",
        ge=16,
        le=65536,
    )
    client_id_is_username: bool = option(
        True,
        "The broker makes each client's id its username, so no account can take another's "
        "id (and push it off); tools sharing one account then displace each other.",
    )


class SiteFile(Section):
    site: SiteSection
    broker: BrokerSection


# ---------------------------------------------------------------------- accounts.toml


class AccountEntry(Section):
    kind: Literal["device", "central", "staff", "technician"] = option(..., "Account kind.")
    role: Literal["gate", "dispenser", "display"] | None = option(None, "A device's role.")
    password_hash: str = option("", "Mosquitto $7$ hash; empty once revoked.")
    created: datetime = option(..., "When the account was first provisioned (UTC).")
    rotated: datetime = option(..., "When its password was last set (UTC).")
    revoked: datetime | None = option(None, "When it was revoked (UTC); unset: active.")

    @property
    def active(self) -> bool:
        return self.revoked is None and bool(self.password_hash)


class AccountsFile(Section):
    accounts: dict[str, AccountEntry] = Field(default_factory=dict)


# --------------------------------------------------------------------------- files


def write_file(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``path`` atomically (a temp file renamed over it) with ``mode`` from the start."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_secret(path: Path, data: bytes | str) -> None:
    write_file(path, data, 0o600)


class SiteDir:
    """Paths and records of one site folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # paths
    @property
    def site_toml(self) -> Path:
        return self.path / "site.toml"

    @property
    def accounts_toml(self) -> Path:
        return self.path / "accounts.toml"

    @property
    def ca_dir(self) -> Path:
        return self.path / "ca"

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def broker_key(self) -> Path:
        return self.ca_dir / "broker.key"

    @property
    def broker_cert(self) -> Path:
        return self.ca_dir / "broker.crt"

    @property
    def signing_dir(self) -> Path:
        return self.path / "signing"

    @property
    def signing_public(self) -> Path:
        return self.signing_dir / "site_signing.pub"

    def device_bundle(self, device_id: str) -> Path:
        return self.path / "devices" / device_id

    def service_bundle(self, name: str) -> Path:
        return self.path / "services" / name

    # records
    def exists(self) -> bool:
        return self.site_toml.is_file()

    def settings(self) -> SiteFile:
        if not self.exists():
            raise SiteDirError(
                f"{self.path} is not a site folder (no site.toml): "
                "create one with `entrada site init`"
            )
        return configlib.load(self.site_toml, SiteFile)

    def write_settings(self, settings: SiteFile) -> None:
        head = (
            "# Entrada site: written by `entrada site init`. The broker certificate carries "
            "broker.hosts;\n# changing them means a new certificate.\n"
        )
        write_file(self.site_toml, head + configlib.show(settings, mask=False))

    def accounts(self) -> dict[str, AccountEntry]:
        if not self.accounts_toml.is_file():
            return {}
        return dict(configlib.load(self.accounts_toml, AccountsFile).accounts)

    def write_accounts(self, accounts: dict[str, AccountEntry]) -> None:
        doc = {
            "accounts": {
                name: {k: v for k, v in entry.model_dump().items() if v is not None}
                for name, entry in sorted(accounts.items())
            }
        }
        head = (
            "# Entrada site accounts: written by `entrada provision`; hashes only "
            "(PBKDF2-SHA512, Mosquitto's $7$ format).\n"
        )
        write_secret(self.accounts_toml, head + tomli_w.dumps(doc))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock: two provisioning commands never interleave their writes."""
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------- certificates


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(site_id: str, now: datetime) -> tuple[bytes, bytes]:
    """A new site CA: (key PEM, certificate PEM). EC P-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Entrada"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Entrada site CA {site_id}"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _private_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in [*hosts, *LOOPBACK_NAMES]:
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_server_cert(
    ca_key_pem: bytes, ca_cert_pem: bytes, hosts: Sequence[str], now: datetime
) -> tuple[bytes, bytes]:
    """The broker's key and certificate, signed by the site CA, valid for ``hosts`` and the
    loopback names."""
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise SiteDirError("the site CA key is not an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Entrada"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + BROKER_CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _private_pem(key), cert.public_bytes(serialization.Encoding.PEM)
