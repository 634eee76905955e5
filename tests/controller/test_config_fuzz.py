"""Fuzzing desired config documents and messages: nothing bad is ever applied.

Each example runs the device's apply step (check, then stage and commit when accepted)
against a keeper that runs a known good version. Every refused document must come with a
``config.rejected.*`` code and a reason, and leave the keeper as it was; unsigned,
foreign-device, replayed-older and schema-invalid messages are never accepted.
"""

from __future__ import annotations

import sqlite3
import typing
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from controller.config_apply import (
    LOCAL_ONLY,
    ConfigCode,
    ConfigKeeper,
    Verdict,
    check_for,
    deep_merge,
    document_problems,
    local_only_paths,
)
from controller.settings import DeviceConfig
from entrada import config as configlib
from entrada import protocol, signing
from entrada.errors import ConfigError, ProtocolError

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.generate()
DEVICE = "gate-1"
GOOD_VERSION = 5
GOOD_DOC = {"gate": {"relay_pulse": 1.5}}
SECRET = "s3cret-broker-pass"
BOOT = {
    "device": {"id": DEVICE, "site": "test", "role": "gate"},
    "mqtt": {"password": SECRET},
    "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim"},
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sign(device: str, version: int, document: Any, key: Ed25519PrivateKey = KEY) -> str:
    return signing.sign(key, signing.config_payload(device, version, document))


def message(document: Any, version: int, device: str = DEVICE, signature: Any = "sign"):
    if signature == "sign":
        signature = sign(device, version, document)
    return protocol.ConfigDesired.model_construct(
        device=device, version=version, document=document, signature=signature
    )


_CONN = sqlite3.connect(":memory:", isolation_level=None)


def keeper_at_good_version() -> ConfigKeeper:
    """A keeper running GOOD_VERSION (one in-memory database, emptied for each example)."""
    _CONN.execute("DROP TABLE IF EXISTS config_slots")
    keeper = ConfigKeeper(_CONN)
    keeper.stage(GOOD_VERSION, GOOD_DOC)
    keeper.commit()
    return keeper


def device_step(keeper: ConfigKeeper, desired: protocol.ConfigDesired) -> Verdict:
    """What the runtime does with one message (self-check always passing here)."""
    verdict = check_for(keeper, desired, PUBLIC, DEVICE, BOOT)
    if verdict.accepted:
        assert verdict.document is not None
        keeper.stage(verdict.version, verdict.document)
        keeper.commit()
    return verdict


def assert_refused(keeper: ConfigKeeper, verdict: Verdict) -> None:
    assert not verdict.accepted
    assert verdict.config is None
    assert str(verdict.code).startswith("config.rejected."), verdict.code
    assert verdict.state == "rejected"
    assert verdict.reason.strip()
    assert SECRET not in verdict.reason
    assert keeper.applied.version == GOOD_VERSION
    assert keeper.applied.document == GOOD_DOC
    assert not keeper.pending


# ------------------------------------------------------------------ strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
any_documents = st.dictionaries(st.text(max_size=12), json_values, max_size=5)


def _leaves(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for name, field in model.model_fields.items():
        sub = configlib._model_of(field)
        if sub is not None:
            out += _leaves(sub, (*prefix, name))
        else:
            out.append(((*prefix, name), field.annotation))
    return out


LEAVES = _leaves(DeviceConfig)


def _values_for(annotation: Any) -> st.SearchStrategy[Any]:
    """Plausible values, right and wrong: the option's choices, numbers around its
    bounds, text of every length, wrong types."""
    choices = [a for a in typing.get_args(annotation) if isinstance(a, str | int | float)]
    right = st.sampled_from(choices) if choices else st.nothing()
    return st.one_of(
        right,
        st.integers(min_value=-5, max_value=100_000),
        st.floats(min_value=-10, max_value=1e6, allow_nan=False),
        st.booleans(),
        st.text(max_size=20),
        st.text(min_size=1000, max_size=1100),
        st.just("x" * 70_000),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )


@st.composite
def schema_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents built from the schema's real keys (so many are valid), with a chance of
    a misspelt key and of a local-only key."""
    doc: dict[str, Any] = {}
    picked = draw(st.lists(st.sampled_from(LEAVES), max_size=6, unique_by=lambda p: p[0]))
    for path, annotation in picked:
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = draw(_values_for(annotation))
    if draw(st.booleans()):
        section = draw(st.sampled_from(["gate", "outbox", "presence", "log"]))
        doc.setdefault(section, {})[draw(st.text(min_size=1, max_size=10))] = 1
    if draw(st.integers(0, 4)) == 0:
        path = draw(st.sampled_from(LOCAL_ONLY))
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = draw(st.sampled_from(["gate-9", "/tmp", {"host": "evil"}]))
    return doc


# -------------------------------------------------------------------- properties


@FUZZ
@given(document=st.one_of(any_documents, schema_documents()), version=st.integers(6, 10**6))
def test_a_signed_newer_document_is_applied_only_when_valid(document, version):
    keeper = keeper_at_good_version()
    verdict = device_step(keeper, message(document, version))
    if verdict.accepted:
        assert verdict.config is not None
        assert not local_only_paths(document)
        assert keeper.applied.version == version
        # what runs is exactly the device file with the document laid over it
        assert verdict.config.device.id == DEVICE
        assert configlib.validate(DeviceConfig, configlib.as_dict(verdict.config, mask=False))
    else:
        assert_refused(keeper, verdict)
        if local_only_paths(document) and verdict.code == ConfigCode.REJECTED_LOCAL_ONLY:
            assert local_only_paths(document)[0] in verdict.reason


@FUZZ
@given(document=st.one_of(schema_documents(), any_documents))
def test_applied_exactly_when_valid_for_this_device(document):
    try:
        configlib.validate(DeviceConfig, deep_merge(BOOT, document))
        schema_ok = True
    except ConfigError:
        schema_ok = False
    valid = schema_ok and document_problems(document) is None
    keeper = keeper_at_good_version()
    verdict = device_step(keeper, message(document, GOOD_VERSION + 1))
    assert verdict.accepted == valid
    if not valid:
        assert_refused(keeper, verdict)


@FUZZ
@given(
    document=st.one_of(any_documents, schema_documents()),
    version=st.integers(1, 10**6),
    attack=st.sampled_from(
        [
            "unsigned",
            "empty_signature",
            "other_key",
            "other_document",
            "foreign_device",
            "signed_for_foreign",
            "version_bumped",
            "replayed_older",
            "garbage_signature",
        ]
    ),
    garbage=st.text(max_size=120),
)
def test_untrusted_messages_are_never_applied(document, version, attack, garbage):
    keeper = keeper_at_good_version()
    newer = GOOD_VERSION + version
    if attack == "unsigned":
        msg = message(document, newer, signature=None)
        code = ConfigCode.REJECTED_UNSIGNED
    elif attack == "empty_signature":
        msg = message(document, newer, signature="")
        code = ConfigCode.REJECTED_UNSIGNED
    elif attack == "other_key":
        msg = message(document, newer, signature=sign(DEVICE, newer, document, OTHER_KEY))
        code = ConfigCode.REJECTED_BAD_SIGNATURE
    elif attack == "other_document":
        msg = message(document, newer, signature=sign(DEVICE, newer, {"x": document}))
        code = ConfigCode.REJECTED_BAD_SIGNATURE
    elif attack == "foreign_device":
        msg = message(document, newer, device="gate-2")
        code = ConfigCode.REJECTED_WRONG_DEVICE
    elif attack == "signed_for_foreign":
        msg = message(document, newer, signature=sign("gate-2", newer, document))
        code = ConfigCode.REJECTED_BAD_SIGNATURE
    elif attack == "version_bumped":
        msg = message(document, newer + 1, signature=sign(DEVICE, newer, document))
        code = ConfigCode.REJECTED_BAD_SIGNATURE
    elif attack == "replayed_older":
        msg = message(document, max(1, GOOD_VERSION - 1 - version % GOOD_VERSION))
        code = ConfigCode.REJECTED_NOT_NEWER
    else:
        msg = message(document, newer, signature=garbage or "x")
        code = ConfigCode.REJECTED_BAD_SIGNATURE
    verdict = device_step(keeper, msg)
    assert_refused(keeper, verdict)
    assert verdict.code == code


@FUZZ
@given(data=st.data())
def test_mutated_wire_messages_are_refused_or_equal_to_the_original(data):
    document = data.draw(schema_documents())
    original = message(document, GOOD_VERSION + 1)
    wire = bytearray(protocol.encode(protocol.ConfigDesired.model_validate(original.model_dump())))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    try:
        received = protocol.decode(protocol.ConfigDesired, bytes(wire))
    except ProtocolError:
        return  # refused before it reaches the check
    keeper = keeper_at_good_version()
    verdict = device_step(keeper, received)
    if verdict.accepted:
        # only a byte flip that left the signed content intact can pass
        assert received.device == DEVICE
        assert signing.canonical_bytes(received.document) == signing.canonical_bytes(document)
        assert received.version == original.version
    else:
        assert_refused(keeper, verdict)


@FUZZ
@given(
    document=st.one_of(any_documents, schema_documents()),
    secret=st.text(min_size=8, max_size=30).filter(lambda s: s.strip() == s and s.isprintable()),
    where=st.sampled_from(
        [("mqtt", "password"), ("gate", "api_token"), ("drivers", "secret"), ("gate", "key")]
    ),
)
def test_secret_values_never_reach_a_reason(document, secret, where):
    document = deep_merge(
        document if isinstance(document, dict) else {}, {where[0]: {where[1]: secret}}
    )
    keeper = keeper_at_good_version()
    verdict = device_step(keeper, message(document, GOOD_VERSION + 1))
    assert secret not in verdict.reason
    assert SECRET not in verdict.reason
    if not verdict.accepted:
        assert_refused(keeper, verdict)


@FUZZ
@given(huge=st.integers(70_000, 300_000), key=st.sampled_from(["zone_to", "port", "nope"]))
def test_huge_documents_are_refused_with_a_size_reason(huge, key):
    keeper = keeper_at_good_version()
    document = {"gate": {key: ["y" * 1000] * (huge // 1000)}}
    verdict = device_step(keeper, message(document, GOOD_VERSION + 1))
    assert_refused(keeper, verdict)
    assert verdict.code == ConfigCode.REJECTED_TOO_LARGE
    assert "bytes" in verdict.reason
