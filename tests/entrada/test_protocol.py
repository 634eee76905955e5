"""The wire contract: every message round-trips, and anything else is refused with a code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrada import protocol as p
from entrada.codes import Rejection
from entrada.errors import ProtocolError

EVENT_ID = "0123456789abcdef0123456789abcdef"

SAMPLES: list[p.Message] = [
    p.Status(
        device="gate-1",
        role="gate",
        state="online",
        epoch=7,
        ts=1.5,
        versions=p.Versions(software="0.1.0", config=3, catalog=9),
        outbox_depth=2,
        faults=["fault.reader_down"],
    ),
    p.EventBatch(
        device="gate-1",
        events=[
            p.Event(
                id=EVENT_ID,
                stream="gate.1",
                seq=1,
                kind="gate.passage",
                ts=2.0,
                data={"uid": "04AABBCC", "n": [1, 2.5, None, True]},
            ),
        ],
    ),
    p.Ack(device="gate-1", streams={"gate.1": 5, "other": 0}, ts=3.0),
    p.CatalogHead(version=12, ts=4.0),
    p.CatalogRequest(since=3, limit=50),
    p.CatalogPage(
        from_version=3,
        to_version=5,
        head=9,
        changes=[
            p.WristbandChange(
                version=4,
                entity="wristband",
                op="upsert",
                key="04AABBCC",
                data=p.WristbandData(status="blocked", holder="Ann", valid_until=9.5),
            ),
            p.WristbandChange(version=5, entity="wristband", op="delete", key="04AABBCCDD"),
        ],
    ),
    p.CatalogRequest(since=0, limit=5000, snapshot=p.SnapshotCursor(as_of=9, after="k")),
    p.CatalogSnapshot(
        as_of=9,
        head=11,
        after=None,
        next="entitlement\x1fE-1",
        rows=[
            p.EntitlementChange(
                version=6,
                entity="entitlement",
                op="upsert",
                key="E-1",
                data=p.EntitlementData(
                    uid="04AABBCC",
                    tariff_id="10x",
                    concession="child",
                    valid_from="2026-01-01",
                    valid_to="2026-12-31",
                    entries_used=2,
                    first_used="2026-02-28",
                    days_used=["2026-02-28"],
                ),
            ),
            p.PostingChange(
                version=7,
                entity="posting",
                op="upsert",
                key="bar:1",
                data=p.PostingData(uid="04AABBCC", amount_minor=1250, description="juice", ts=1.0),
            ),
            p.PaymentChange(
                version=8,
                entity="payment",
                op="upsert",
                key="kiosk-1:7",
                data=p.PaymentData(uid="04AABBCC", amount_minor=1250, method="card", ts=2.0),
            ),
            p.TimeStopChange(
                version=9,
                entity="timestop",
                op="upsert",
                key="kiosk-1:8",
                data=p.TimeStopData(uid="04AABBCC", at=3.0),
            ),
            p.RulesChange(
                version=5,
                entity="rules",
                op="upsert",
                key="site",
                data=p.RulesData(document={"site": {"id": "aqua"}}),
            ),
        ],
    ),
    p.CentralStatus(state="online", epoch=3, ts=7.0),
    p.PresenceBatch(
        device="gate-1",
        passages=[
            p.PeerPassage(
                id=EVENT_ID,
                uid="04AABBCC",
                at=8.0,
                zone_from=None,
                zone_to="pool",
                direction="in",
                entitlement_id="E-1",
                tariff_id="day",
                consumed=True,
                gate="gate-1",
            ),
            p.PeerPassage(
                id=EVENT_ID,
                uid="04AABBCC",
                at=9.0,
                zone_from="sauna",
                zone_to="pool",
                direction="out",
                gate="gate-2",
                tab_minor=800,
            ),
        ],
    ),
    p.ConfigDesired(
        device="gate-1", version=2, document={"gate": {"debounce": 1.5}}, signature="sig"
    ),
    p.ConfigReported(
        device="gate-1", version=2, state="rejected", code="config.bad", reason="why", ts=5.0
    ),
    p.CommandRequest(id="cmd-0001", name="open", args={"seconds": 2}, expires=60.0),
    p.CommandResponse(
        id="cmd-0001",
        name="open",
        ok=True,
        code="ok",
        duplicate=True,
        result={"opened": True},
        ts=6.0,
    ),
]
MODELS = [type(m) for m in SAMPLES]
VALID = {type(m): json.loads(p.encode(m)) for m in SAMPLES}


def payload(model: type[p.Message], **changes: Any) -> bytes:
    """A valid document for ``model`` with fields replaced (``None`` removes one)."""
    doc = dict(VALID[model])
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def event(**changes: Any) -> dict[str, Any]:
    return {"id": EVENT_ID, "stream": "s", "seq": 1, "kind": "k", "ts": 1.0, **changes}


def rejection(model: type[p.Message], raw: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        p.decode(model, raw)
    return p.rejection_code(info.value)


# ----------------------------------------------------------------------- round trip


def test_samples_cover_every_message_type():
    defined_here = {m for m in p.Message.__subclasses__() if m.__module__ == p.__name__}

    assert set(MODELS) == defined_here


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.type)
def test_every_message_round_trips(message):
    raw = p.encode(message)

    assert p.decode(type(message), raw) == message
    assert json.loads(raw)["v"] == p.SCHEMA_VERSION
    assert json.loads(raw)["type"] == message.type


@pytest.mark.parametrize(
    "wrap",
    [bytes, bytearray, memoryview, lambda b: b.decode()],
    ids=["bytes", "bytearray", "memoryview", "str"],
)
def test_decode_accepts_every_payload_kind(wrap):
    message = SAMPLES[0]

    assert p.decode(p.Status, wrap(p.encode(message))) == message


def test_encode_is_compact_utf8():
    raw = p.encode(p.Status(device="d", role="caf\u00e9", state="offline", epoch=1, ts=0))

    assert b": " not in raw and b", " not in raw
    assert "café".encode() in raw


def test_defaults_fill_in():
    msg = p.decode(p.CatalogRequest, b'{"v": 1, "type": "catalog_request", "since": 0}')

    assert (msg.limit, msg.v, msg.type) == (1000, 1, "catalog_request")


def test_payload_of_exactly_the_limit_is_accepted():
    doc = VALID[p.ConfigDesired] | {"document": {"pad": ""}}
    filler = p.MAX_PAYLOAD_BYTES - len(json.dumps(doc).encode())
    doc["document"]["pad"] = "x" * filler
    raw = json.dumps(doc).encode()

    assert len(raw) == p.MAX_PAYLOAD_BYTES
    assert p.decode(p.ConfigDesired, raw).document["pad"] == "x" * filler


# --------------------------------------------------------------------------- topics


def test_topic_names():
    t = p.Topics("pool")

    assert [
        t.status("g1"),
        t.events("g1"),
        t.ack("g1"),
        t.config_desired("g1"),
        t.config_reported("g1"),
        t.cmd_request("g1"),
        t.cmd_response("g1"),
        t.catalog_request("g1"),
        t.catalog_page("g1"),
        t.catalog_head,
        t.all_devices("status"),
    ] == [
        "entrada/pool/device/g1/status",
        "entrada/pool/device/g1/events",
        "entrada/pool/device/g1/ack",
        "entrada/pool/device/g1/config/desired",
        "entrada/pool/device/g1/config/reported",
        "entrada/pool/device/g1/cmd/req",
        "entrada/pool/device/g1/cmd/res",
        "entrada/pool/device/g1/catalog/req",
        "entrada/pool/device/g1/catalog/page",
        "entrada/pool/catalog/head",
        "entrada/pool/device/+/status",
    ]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("entrada/pool/device/g1/status", ("g1", "status")),
        ("entrada/pool/device/g_1-A/config/desired", ("g_1-A", "config/desired")),
        ("entrada/pool/device/g1/", None),
        ("entrada/pool/device/g1", None),
        ("entrada/pool/device//status", None),
        ("entrada/pool/device/+/status", None),
        ("entrada/pool/device/#", None),
        ("entrada/pool/device/-g/status", None),
        ("entrada/other/device/g1/status", None),
        ("entrada/pool2/device/g1/status", None),
        ("entrada/pool/catalog/head", None),
        ("", None),
    ],
)
def test_parse_device_topic(topic, expected):
    assert p.Topics("pool").parse_device_topic(topic) == expected


@pytest.mark.parametrize("site", ["", "a/b", "+", "#", "-x", "_x", "a b", "é", "a" * 65])
def test_invalid_site_ids_are_refused(site):
    with pytest.raises(ValueError, match="invalid site id"):
        p.Topics(site)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("a", True), ("A9_-", True), ("a" * 64, True), ("a" * 65, False), ("", False), ("a.b", False)],
)
def test_valid_id(value, ok):
    assert p.valid_id(value) is ok


@pytest.mark.parametrize("value", ["gate\n", "pool\n"])
def test_valid_id_refuses_a_trailing_newline(value):
    assert not p.valid_id(value)
    assert p.Topics("pool").parse_device_topic(f"entrada/pool/device/{value}/status") is None


# ------------------------------------------------------------------------ rejection

NOT_JSON, NOT_UTF8, TOO_LARGE = Rejection.NOT_JSON, Rejection.NOT_UTF8, Rejection.TOO_LARGE
VERSION, SHAPE = Rejection.BAD_SCHEMA_VERSION, Rejection.BAD_SHAPE
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("model", "raw", "code"),
    [
        (p.Status, b"", NOT_JSON),
        (p.Status, b"{", NOT_JSON),
        (p.Status, b"{'v': 1}", NOT_JSON),
        (p.Status, b"\xff\xfe{}", NOT_UTF8),
        (p.Status, b'{"v": 1, "role": "\xc3"}', NOT_UTF8),
        (p.Status, b"x" * (p.MAX_PAYLOAD_BYTES + 1), TOO_LARGE),
        (p.Status, "é" * (p.MAX_PAYLOAD_BYTES // 2 + 1), TOO_LARGE),
        (p.Status, DEEP, NOT_JSON),
        (p.Status, b'{"v": 1, "data": ' + DEEP + b"}", NOT_JSON),
        (p.Status, b"[]", SHAPE),
        (p.Status, b"1", SHAPE),
        (p.Status, b'"status"', SHAPE),
        (p.Status, b"null", SHAPE),
        (p.Status, payload(p.Status, v=None), VERSION),
        (p.Status, payload(p.Status, v=2), VERSION),
        (p.Status, payload(p.Status, v=0), VERSION),
        (p.Status, payload(p.Status, v="1"), VERSION),
        (p.Status, payload(p.Status, v=[1]), VERSION),
        (p.Status, payload(p.Ack), SHAPE),  # another message's document
        (p.Status, payload(p.Status, type="ack"), SHAPE),
        (p.Status, payload(p.Status, extra=1), SHAPE),
        (p.Status, payload(p.Status, device=None), SHAPE),
        (p.Status, payload(p.Status, device="a/b"), SHAPE),
        (p.Status, payload(p.Status, device="+"), SHAPE),
        (p.Status, payload(p.Status, device="a" * 65), SHAPE),
        (p.Status, payload(p.Status, device=5), SHAPE),
        (p.Status, payload(p.Status, epoch=0), SHAPE),
        (p.Status, payload(p.Status, epoch="abc"), SHAPE),
        (p.Status, payload(p.Status, epoch=[1]), SHAPE),
        (p.Status, payload(p.Status, state="asleep"), SHAPE),
        (p.Status, payload(p.Status, faults="x"), SHAPE),
        (p.Status, payload(p.Status, faults=["f"] * 65), SHAPE),
        (p.Status, payload(p.Status, versions={"software": "1", "x": 1}), SHAPE),
        (p.Status, payload(p.Status, ts=None), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[]), SHAPE),
        (
            p.EventBatch,
            payload(p.EventBatch, events=[event(seq=i + 1) for i in range(1001)]),
            SHAPE,
        ),
        (p.EventBatch, payload(p.EventBatch, events=[event(id="X" * 32)]), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[event(seq=0)]), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[event(kind="Bad")]), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[event(stream="/s")]), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[event(extra=1)]), SHAPE),
        (p.EventBatch, payload(p.EventBatch, events=[event(data=[1])]), SHAPE),
        (p.Ack, payload(p.Ack, streams={"s": -1}), SHAPE),
        (p.Ack, payload(p.Ack, streams={"a b": 1}), SHAPE),
        (p.CatalogRequest, payload(p.CatalogRequest, limit=p.MAX_PAGE_CHANGES + 1), SHAPE),
        (p.CatalogRequest, payload(p.CatalogRequest, limit=0), SHAPE),
        (
            p.CatalogPage,
            payload(
                p.CatalogPage,
                changes=[{"version": 1, "entity": "wristband", "op": "upsert", "key": "04aabbcc"}],
            ),
            SHAPE,
        ),
        (p.CommandRequest, payload(p.CommandRequest, id="short"), SHAPE),
        (p.CommandRequest, payload(p.CommandRequest, name="Open"), SHAPE),
        (p.CommandResponse, payload(p.CommandResponse, ok="maybe"), SHAPE),
        # strict models: no coercion
        (p.Status, payload(p.Status, epoch="5"), SHAPE),
        (p.Status, payload(p.Status, epoch=5.0), SHAPE),
        (p.Status, payload(p.Status, versions={"software": "1", "config": "2"}), SHAPE),
        (p.CatalogHead, payload(p.CatalogHead, version=True), SHAPE),
        (p.CommandResponse, payload(p.CommandResponse, ok="true"), SHAPE),
        (p.CommandResponse, payload(p.CommandResponse, ok=1), SHAPE),
    ],
)
def test_decode_rejects_with_a_stable_code(model, raw, code):
    assert rejection(model, raw) == code


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        (p.Status, payload(p.Status).replace(b'"ts": 1.5', b'"ts": NaN')),
        (p.Status, payload(p.Status).replace(b'"ts": 1.5', b'"ts": Infinity')),
        (p.Status, payload(p.Status).replace(b'"ts": 1.5', b'"ts": -1e999')),
        (p.EventBatch, payload(p.EventBatch).replace(b'"ts": 2.0', b'"ts": NaN')),
        (p.EventBatch, payload(p.EventBatch).replace(b'"ts": 2.0', b'"ts": 1e999')),
        (p.CatalogPage, payload(p.CatalogPage).replace(b"9.5", b"-Infinity")),
    ],
)
def test_non_finite_numbers_are_refused(model, raw):
    assert rejection(model, raw) in {NOT_JSON, SHAPE}  # by the parser or by the model


def test_rejection_message_names_the_problem():
    with pytest.raises(ProtocolError, match=r"^reject\.shape: epoch: .*greater than"):
        p.decode(p.Status, payload(p.Status, epoch=0))


def bug(reason: str, model: type[p.Message], raw: Any) -> Any:
    """A case that once was a bug (now fixed): kept as a regression test."""
    return pytest.param(model, raw, id=reason)


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        bug(
            "json.loads ValueError (int beyond 4300 digits) escapes decode",
            p.Status,
            b'{"v": 1, "epoch": ' + b"1" * 5000 + b"}",
        ),
        bug("str payload with a lone surrogate raises UnicodeEncodeError", p.Status, "\ud800"),
        bug(
            "Infinity inside free-form data is accepted",
            p.EventBatch,
            payload(p.EventBatch).replace(b'"n": [1', b'"n": [Infinity'),
        ),
        bug("v=true passes the version check (True == 1)", p.Status, payload(p.Status, v=True)),
        bug("v=1.0 passes the version check", p.Status, payload(p.Status, v=1.0)),
        bug(
            "an escaped lone surrogate is accepted but encode() then fails",
            p.EventBatch,
            payload(p.EventBatch, events=[event(data={"k": "\udc00"})]),
        ),
    ],
)
def test_decode_refuses_what_the_contract_forbids(model, raw):
    with pytest.raises(ProtocolError):
        p.decode(model, raw)


# ------------------------------------------------------------------------- property

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(MODELS), raw=st.binary(max_size=300))
def test_arbitrary_bytes_give_a_model_or_protocol_error(model, raw):
    try:
        assert isinstance(p.decode(model, raw), model)
    except ProtocolError as err:
        assert p.rejection_code(err) in set(Rejection)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    data=st.data(),
    value=json_values,
    top=json_values,
)
def test_arbitrary_json_gives_a_model_or_protocol_error(model, data, value, top):
    doc = dict(VALID[model])
    doc[data.draw(st.sampled_from([*doc, "other"]))] = value  # one field gets junk
    for raw in (json.dumps(doc), json.dumps(top)):  # floats() brings NaN and Infinity
        try:
            assert isinstance(p.decode(model, raw.encode()), model)
        except ProtocolError as err:
            assert p.rejection_code(err) in set(Rejection)


# ------------------------------------------------------------------ catalog entities


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"entity": "wristband", "op": "upsert", "key": "04AABBCC"}, "an upsert carries data"),
        (
            {"entity": "posting", "op": "delete", "key": "p1", "data": {"uid": "04AABBCC"}},
            "data",
        ),
        ({"entity": "gift", "op": "delete", "key": "x"}, "entity"),
        (
            {
                "entity": "entitlement",
                "op": "upsert",
                "key": "E1",
                "data": {"uid": "04AABBCC", "tariff_id": "day", "valid_to": "2026-02-30"},
            },
            "valid_to",
        ),
        (
            {
                "entity": "posting",
                "op": "upsert",
                "key": "p1",
                "data": {"uid": "04AABBCC", "amount_minor": 12.5, "ts": 1.0},
            },
            "amount_minor",
        ),
        (
            {
                "entity": "wristband",
                "op": "upsert",
                "key": "04AABBCC",
                "data": {"deposit_minor": -1},
            },
            "deposit_minor",
        ),
        ({"entity": "rules", "op": "upsert", "key": "other", "data": {"document": {}}}, "key"),
    ],
)
def test_a_bad_catalog_change_is_refused_naming_the_field(change, code):
    page = {"v": 1, "type": "catalog_page", "from_version": 0, "to_version": 1, "head": 1}
    raw = json.dumps({**page, "changes": [{"version": 1, **change}]})

    with pytest.raises(ProtocolError) as info:
        p.decode(p.CatalogPage, raw)

    assert p.rejection_code(info.value) == Rejection.BAD_SHAPE
    assert code in str(info.value)


def test_every_entity_has_a_data_model():
    assert set(p.ENTITY_DATA) == set(p.CATALOG_ENTITIES)


def test_presence_topic_round_trips():
    t = p.Topics("aqua")

    assert t.parse_presence_topic(t.presence("gate-2")) == "gate-2"
    assert t.parse_presence_topic("entrada/aqua/presence/../x") is None
    assert t.parse_presence_topic(t.status("gate-2")) is None
