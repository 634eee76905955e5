"""Ed25519 signatures over canonical JSON: how a device knows a config came from central.

Central holds the site's private key (``site_signing.key``, PEM, mode 0600) and signs each
desired config document; every device holds the public key (``site_signing.pub``) and
refuses anything that does not verify. What is signed is the canonical JSON of an object
(sorted keys, no spaces, UTF-8, no NaN), so the same data always gives the same bytes on
both sides whatever order a dict was built in. For a desired config the signed object is
``{"device", "version", "document"}`` (:func:`config_payload`): the signature binds the
document to one device and one version, so it cannot be replayed to another device or
presented again as a newer version.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from entrada.errors import EntradaError

logger = logging.getLogger(__name__)

PRIVATE_KEY_NAME = "site_signing.key"
PUBLIC_KEY_NAME = "site_signing.pub"
#: An Ed25519 signature is 64 bytes; base64url without padding is 86 characters.
SIGNATURE_CHARS = 86


class SigningError(EntradaError):
    """A signing key is missing, unreadable, of the wrong kind, or would be overwritten."""


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write a new site key pair into ``directory``: ``site_signing.key`` (PEM PKCS#8,
    mode 0600) and ``site_signing.pub`` (PEM SubjectPublicKeyInfo). Refuses to overwrite
    either file: replacing a site key means re-provisioning every device's public key."""
    directory = Path(directory)
    private_path = directory / PRIVATE_KEY_NAME
    public_path = directory / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    directory.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never clobber a key that appeared meanwhile; 0600 from the first byte.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(public_pem)
    except FileExistsError as err:
        raise SigningError(f"{err.filename} exists; refusing to overwrite a signing key") from err
    except OSError as err:
        raise SigningError(f"cannot write signing key in {directory}: {err}") from err
    logger.info("wrote site signing key pair %s, %s", private_path, public_path)
    return private_path, public_path


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SigningError(f"cannot read signing key {path}: {err.strerror or err}") from err


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The site's Ed25519 private key from a PEM file (central only)."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise SigningError(f"{path}: not a PEM private key") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The site's Ed25519 public key from a PEM file (every device)."""
    try:
        key = serialization.load_pem_public_key(_read(path))
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise SigningError(f"{path}: not a PEM public key") from err
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path}: not an Ed25519 public key")
    return key


def canonical_bytes(obj: Any) -> bytes:
    """Canonical JSON of ``obj``: sorted keys, no spaces, UTF-8, NaN and infinity refused
    (ValueError). Equal data gives equal bytes, whatever order its dicts were built in."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def config_payload(device: str, version: int, document: dict[str, Any]) -> dict[str, Any]:
    """The object signed for a desired config: binds the document to a device and version."""
    return {"device": device, "version": version, "document": document}


def sign(private_key: Ed25519PrivateKey, obj: Any) -> str:
    """The base64url (unpadded) Ed25519 signature of ``canonical_bytes(obj)``."""
    raw = private_key.sign(canonical_bytes(obj))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify(public_key: Ed25519PublicKey, obj: Any, signature: str) -> bool:
    """True only when ``signature`` is a valid signature of ``obj`` by ``public_key``.
    Never raises: a malformed signature, an unserialisable object (NaN, a set, a lone
    surrogate) or any wrong type is simply not valid."""
    if not isinstance(signature, str) or len(signature) != SIGNATURE_CHARS:
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "==")
        data = canonical_bytes(obj)
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        return False
    # base64 decoding ignores nothing here, but a non-canonical encoding of the same bytes
    # (trailing bits set) would still verify; insist on the one canonical spelling.
    if len(raw) != 64 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != signature:
        return False
    try:
        public_key.verify(raw, data)
    except InvalidSignature:
        return False
    return True
