"""Ed25519 signing over canonical JSON (entrada.signing)."""

from __future__ import annotations

import math
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from entrada import signing
from entrada.signing import SigningError


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    private_path, public_path = signing.generate_keypair(directory)
    return signing.load_private_key(private_path), signing.load_public_key(public_path)


def test_keypair_files_and_modes(tmp_path):
    private_path, public_path = signing.generate_keypair(tmp_path / "k")
    assert private_path.name == "site_signing.key"
    assert public_path.name == "site_signing.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_keypair_refuses_to_overwrite(tmp_path):
    private_path, _ = signing.generate_keypair(tmp_path)
    before = private_path.read_bytes()
    with pytest.raises(SigningError, match="refusing to overwrite"):
        signing.generate_keypair(tmp_path)
    assert private_path.read_bytes() == before


def test_keypair_refuses_when_only_public_exists(tmp_path):
    (tmp_path / "site_signing.pub").write_text("x")
    with pytest.raises(SigningError):
        signing.generate_keypair(tmp_path)
    assert not (tmp_path / "site_signing.key").exists()


def test_load_errors(tmp_path):
    with pytest.raises(SigningError, match="cannot read"):
        signing.load_private_key(tmp_path / "missing.key")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SigningError, match="not a PEM private key"):
        signing.load_private_key(junk)
    with pytest.raises(SigningError, match="not a PEM public key"):
        signing.load_public_key(junk)


def test_public_key_is_not_a_private_key(tmp_path):
    _, public_path = signing.generate_keypair(tmp_path)
    with pytest.raises(SigningError):
        signing.load_private_key(public_path)


def test_canonical_bytes_sorted_compact_utf8():
    assert signing.canonical_bytes({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    assert signing.canonical_bytes({"a": 1, "b": 2}) == signing.canonical_bytes({"b": 2, "a": 1})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_bytes_refuses_nan(bad):
    with pytest.raises(ValueError):
        signing.canonical_bytes({"x": bad})


def test_sign_and_verify(keys):
    private, public = keys
    obj = signing.config_payload("gate-1", 3, {"gate": {"open_ms": 800}})
    sig = signing.sign(private, obj)
    assert len(sig) == signing.SIGNATURE_CHARS
    assert "=" not in sig
    assert signing.verify(public, obj, sig)
    assert signing.verify(
        public, {"version": 3, "document": obj["document"], "device": "gate-1"}, sig
    )


def test_signature_binds_device_and_version(keys):
    private, public = keys
    doc = {"gate": {"open_ms": 800}}
    sig = signing.sign(private, signing.config_payload("gate-1", 3, doc))
    assert not signing.verify(public, signing.config_payload("gate-2", 3, doc), sig)
    assert not signing.verify(public, signing.config_payload("gate-1", 4, doc), sig)
    assert not signing.verify(public, signing.config_payload("gate-1", 3, {"gate": {}}), sig)


def test_other_key_does_not_verify(keys, tmp_path):
    private, _ = keys
    _, other_pub = signing.generate_keypair(tmp_path)
    obj = {"a": 1}
    assert not signing.verify(signing.load_public_key(other_pub), obj, signing.sign(private, obj))


@pytest.mark.parametrize(
    "bad",
    ["", "x", "=" * 86, "é" * 86, "A" * 85, "A" * 87, "!" * 86, None, 123, b"A" * 86],
)
def test_malformed_signatures_are_false(keys, bad):
    _, public = keys
    assert signing.verify(public, {"a": 1}, bad) is False


def test_non_canonical_base64_spelling_refused(keys):
    private, public = keys
    obj = {"a": 1}
    sig = signing.sign(private, obj)
    # the last character carries 2 unused bits; flipping them decodes to the same bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    twin = sig[:-1] + alphabet[last ^ 1]
    assert signing.verify(public, obj, twin) is False


def test_unserialisable_object_is_false(keys):
    private, public = keys
    sig = signing.sign(private, {"a": 1})
    assert signing.verify(public, {"a": math.nan}, sig) is False
    assert signing.verify(public, {"a": {1, 2}}, sig) is False
    assert signing.verify(public, {"a": "\ud800"}, sig) is False


@given(st.text(max_size=200))
def test_verify_never_raises_on_any_text(text):
    public = _PUBLIC
    assert signing.verify(public, {"a": 1}, text) is False


_KEY = Ed25519PrivateKey.generate()
_PUBLIC = _KEY.public_key()
