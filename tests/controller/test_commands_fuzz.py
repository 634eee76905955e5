"""Fuzzing the command desk: whatever arrives on cmd/req, the desk answers (or ignores an
empty payload) without raising, answers only on the device's own cmd/res, and runs a
handler only for a valid, unexpired request of a known command with valid arguments."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.commands import (
    ARG_MODELS,
    COMMAND_NAMES,
    MAX_AHEAD,
    CommandCode,
    CommandDesk,
    CommandOutcome,
    CommandRefusal,
)
from entrada import protocol
from entrada.codes import Rejection
from entrada.errors import ProtocolError

NOW = 1_795_400_000.0
TOPICS = protocol.Topics("demo")
OWN = TOPICS.cmd_response("gate-1")
REFUSALS = {str(c) for c in (*Rejection, *CommandRefusal)}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Counting:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def handler(self, name: str):
        def handle(args: Any, now: float) -> CommandOutcome:
            assert isinstance(args, ARG_MODELS[name])
            self.calls.append((name, args))
            return CommandOutcome(True, CommandCode.DONE, {"name": name})

        return handle


def desk() -> tuple[CommandDesk, Counting, sqlite3.Connection]:
    counting = Counting()
    conn = sqlite3.connect(":memory:", isolation_level=None)
    handlers = {name: counting.handler(name) for name in COMMAND_NAMES}
    return CommandDesk(conn, "gate-1", handlers, topics=TOPICS), counting, conn


def runnable(payload: bytes) -> bool:
    """The contract, stated independently of the desk's order of checks."""
    try:
        req = protocol.decode(protocol.CommandRequest, payload)
    except ProtocolError:
        return False
    if not NOW <= req.expires <= NOW + MAX_AHEAD or req.name not in ARG_MODELS:
        return False
    try:
        ARG_MODELS[req.name].model_validate(req.args)
    except ValidationError:
        return False
    return True


def check(payload: bytes, response_topic: str | None = OWN) -> None:
    d, counting, conn = desk()
    try:
        first = d.on_request(payload, response_topic, b"corr", NOW)
        again = d.on_request(payload, response_topic, b"corr", NOW + 1)
    finally:
        conn.close()
    if not payload:
        assert first is None and again is None
        return
    assert first is not None and again is not None
    for reply in (first, again):
        assert reply.topic == OWN
        assert reply.correlation == b"corr"
        assert protocol.decode(protocol.CommandResponse, reply.payload) == reply.response
    expected = runnable(payload) and response_topic in (None, OWN)
    assert len(counting.calls) == int(expected)  # at most once, and only when valid
    assert first.ran is expected and again.ran is False
    if expected:
        assert first.response.ok and again.response.duplicate
    else:
        assert not first.response.ok
        assert first.response.code in REFUSALS
        assert isinstance(first.response.result.get("reason"), str)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(st.binary(max_size=512))
@example(b"")
@example(b"[" * 50_000)
@example(b'{"v": 1, "type": "command", "id": "\\ud800aaaaaaaa"}')
@example(b'{"v": 1, "expires": NaN}')
@example(b"\x00" * (protocol.MAX_PAYLOAD_BYTES + 1))
def test_arbitrary_bytes(payload):
    check(payload)


@FUZZ
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_arbitrary_json_objects(obj):
    check(json.dumps(obj).encode())


arg_values = json_values | st.sampled_from(
    [0, 1, 2, 2.5, -1, 30, 31, 120, 500, 501, True, False, "INFO", "WARNING", "info", "", "x" * 201]
)
requests = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1", True]),
        "type": st.sampled_from(["command", "command", "command_result", ""]),
        "id": st.sampled_from(["cmd-00000001", "tech-0123456789abcdef", "short", "a" * 65])
        | st.text(max_size=70),
        "name": st.sampled_from([*COMMAND_NAMES, "open_gate", "OPEN-GATE", "", "x" * 33])
        | st.text(max_size=40),
        "args": st.dictionaries(
            st.sampled_from(["seconds", "lines", "level", "full", "text", "extra"]),
            arg_values,
            max_size=3,
        )
        | json_values,
        "expires": st.floats(min_value=NOW - 10, max_value=NOW + MAX_AHEAD + 10)
        | st.sampled_from([NOW, NOW + MAX_AHEAD, "soon", None, True]),
    }
)


@FUZZ
@given(
    requests,
    st.sets(st.sampled_from(["v", "type", "id", "name", "args", "expires"]), max_size=2),
    st.dictionaries(st.sampled_from(["extra", "device", "ts"]), json_values, max_size=1),
    st.sampled_from([OWN, OWN, None, TOPICS.cmd_response("gate-2"), "x/cmd/res"]),
)
def test_near_valid_requests(obj, dropped, added, response_topic):
    doc = {k: v for k, v in obj.items() if k not in dropped} | added
    check(json.dumps(doc).encode(), response_topic)


@FUZZ
@given(st.sampled_from(COMMAND_NAMES), st.dictionaries(st.text(max_size=8), arg_values, max_size=3))
def test_any_arguments_to_every_command(name, args):
    doc = {"v": 1, "type": "command", "id": "cmd-00000001", "name": name, "args": args}
    check(json.dumps(doc | {"expires": NOW + 30}).encode())
