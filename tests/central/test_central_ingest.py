"""Decoding event payloads: bad input is quarantined, a poison event blocks nothing."""

from __future__ import annotations

import json
import logging

import pytest

from central.ingest import decode_events
from entrada.codes import Rejection
from entrada.logutil import ThrottledLog
from entrada.protocol import MAX_BATCH_EVENTS, MAX_PAYLOAD_BYTES, Topics

TOPICS = Topics("test")
TOPIC = TOPICS.events("g1")


def good(seq: int, stream: str = "gate") -> dict:
    return {
        "id": f"{seq:032x}",
        "stream": stream,
        "seq": seq,
        "kind": "gate.grant",
        "ts": 1.0,
        "data": {"uid": "DEADBEEF"},
    }


def batch(*events: dict, device: str = "g1", **over: object) -> bytes:
    doc = {"v": 1, "type": "events", "device": device, "events": list(events), **over}
    return json.dumps(doc).encode()


def test_good_batch():
    d = decode_events("g1", TOPIC, batch(good(1), good(2)))

    assert d.rejected is None
    assert [e.seq for e in d.events] == [1, 2]
    assert d.quarantined == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", Rejection.NOT_JSON),
        (b"{not json", Rejection.NOT_JSON),
        (b"\xff\xfe\x00garbage", Rejection.NOT_UTF8),
        (b"[1, 2, 3]", Rejection.BAD_SHAPE),
        (b'"just a string"', Rejection.BAD_SHAPE),
        (batch(good(1), v=2), Rejection.BAD_SCHEMA_VERSION),
        (batch(good(1), v="1"), Rejection.BAD_SCHEMA_VERSION),
        (
            json.dumps({"type": "events", "device": "g1", "events": [good(1)]}).encode(),
            Rejection.BAD_SCHEMA_VERSION,
        ),
        (batch(good(1), type="status"), Rejection.BAD_SHAPE),
        (batch(good(1), extra="field"), Rejection.BAD_SHAPE),
        (batch(), Rejection.BAD_SHAPE),  # no events
        (
            json.dumps({"v": 1, "type": "events", "device": "g1", "events": "x"}).encode(),
            Rejection.BAD_SHAPE,
        ),
        (
            json.dumps({"v": 1, "type": "events", "device": 7, "events": [good(1)]}).encode(),
            Rejection.BAD_SHAPE,
        ),
        (batch(*[good(n) for n in range(1, MAX_BATCH_EVENTS + 2)]), Rejection.BAD_SHAPE),
        (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", Rejection.TOO_LARGE),
        (b"[" * 100_000, Rejection.NOT_JSON),  # nesting bomb
        (batch(good(1), device="g2"), Rejection.WRONG_DEVICE),
        (batch(good(1), device="../g1"), Rejection.BAD_SHAPE),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_payload_is_quarantined_whole(payload, code):
    d = decode_events("g1", TOPIC, payload)

    assert d.rejected is not None and d.rejected[0] == code
    assert d.events == []
    (q,) = d.quarantined
    assert (q.device, q.topic, q.code, q.stream, q.seq) == ("g1", TOPIC, code, None, None)
    assert q.reason
    assert len(q.payload) <= MAX_PAYLOAD_BYTES


def test_poison_event_is_quarantined_with_its_identity_and_neighbours_kept():
    poison = {**good(2), "kind": "NOT A KIND"}
    d = decode_events("g1", TOPIC, batch(good(1), poison, good(3)))

    assert d.rejected is None
    assert [e.seq for e in d.events] == [1, 3]
    (q,) = d.quarantined
    assert (q.stream, q.seq, q.code) == ("gate", 2, Rejection.BAD_SHAPE)
    assert "kind" in q.reason
    assert json.loads(q.payload) == poison


@pytest.mark.parametrize(
    "poison",
    [
        {"stream": "gate", "seq": "2"},  # seq as text
        {"stream": "gate", "seq": True},  # a bool is not a seq
        {"stream": "gate", "seq": 0},
        {"stream": "bad stream!", "seq": 2},
        {"seq": 2},
        "not an object",
        None,
        [1, 2],
    ],
)
def test_poison_event_without_readable_identity(poison):
    d = decode_events("g1", TOPIC, batch(good(1), poison))

    assert [e.seq for e in d.events] == [1]
    (q,) = d.quarantined
    assert (q.stream, q.seq) == (None, None)


def test_wrong_types_inside_an_event():
    bad = {**good(2), "ts": "yesterday", "data": [1], "extra": 1}
    d = decode_events("g1", TOPIC, batch(bad))

    (q,) = d.quarantined
    assert (q.stream, q.seq) == ("gate", 2)
    assert "ts" in q.reason and "data" in q.reason


def test_throttled_log_holds_back_a_flood(caplog):
    now = [0.0]
    log = ThrottledLog(logging.getLogger("test.throttle"), interval=10.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.throttle")

    for _ in range(1000):
        log.warning("k", "bad payload %s", "x")
    log.warning("other", "another problem")
    now[0] = 10.0
    log.warning("k", "bad payload %s", "y")

    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["bad payload x", "another problem", "bad payload y (and 999 more like it)"]


def test_throttled_log_bounds_its_keys(caplog):
    log = ThrottledLog(logging.getLogger("test.throttle"), interval=10.0, clock=lambda: 0.0)
    for n in range(ThrottledLog.MAX_KEYS + 50):
        log.warning(n, "problem %d", n)
    assert len(log._last) <= ThrottledLog.MAX_KEYS
