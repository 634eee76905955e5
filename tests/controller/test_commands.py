"""The command desk: each command id runs at most once, expired or malformed ones never,
and every answer goes to the device's own cmd/res."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import pytest

from controller.commands import (
    ARG_MODELS,
    COMMAND_NAMES,
    MAX_AHEAD,
    CommandCode,
    CommandDesk,
    CommandOutcome,
    CommandRefusal,
    logs_handler,
)
from entrada import protocol
from entrada.codes import Rejection
from entrada.errors import DriverError
from entrada.logring import LogRing

NOW = 1_795_400_000.0
TOPICS = protocol.Topics("demo")
OWN = TOPICS.cmd_response("gate-1")


class Recorder:
    """A handler that records its calls and answers ``cmd.done``."""

    def __init__(self, result: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[Any, float]] = []
        self.result = result if result is not None else {"opened": True}

    def __call__(self, args: Any, now: float) -> CommandOutcome:
        self.calls.append((args, now))
        return CommandOutcome(True, CommandCode.DONE, dict(self.result))


def request(
    name: str = "open-gate",
    ident: str = "cmd-00000001",
    args: dict[str, Any] | None = None,
    expires: float = NOW + 30,
) -> bytes:
    return protocol.encode(
        protocol.CommandRequest(id=ident, name=name, args=args or {}, expires=expires)
    )


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "device.db"


def open_desk(path, **handlers) -> tuple[CommandDesk, sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    return CommandDesk(conn, "gate-1", handlers, topics=TOPICS), conn


@pytest.fixture
def gate(db_path):
    handler = Recorder()
    desk, conn = open_desk(db_path, **{"open-gate": handler})
    yield desk, handler
    conn.close()


def test_a_command_runs_once_and_is_answered_on_cmd_res(gate):
    desk, handler = gate

    reply = desk.on_request(request(args={"seconds": 2}), OWN, b"corr-1", NOW)

    assert len(handler.calls) == 1
    assert handler.calls[0][0].seconds == 2.0
    assert (reply.topic, reply.correlation, reply.ran) == (OWN, b"corr-1", True)
    assert reply.properties().CorrelationData == b"corr-1"
    answer = protocol.decode(protocol.CommandResponse, reply.payload)
    assert (answer.id, answer.name, answer.ok, answer.code) == (
        "cmd-00000001",
        "open-gate",
        True,
        "cmd.done",
    )
    assert (answer.duplicate, answer.result, answer.ts) == (False, {"opened": True}, NOW)


def test_a_redelivery_is_answered_with_the_first_result(gate):
    desk, handler = gate
    first = desk.on_request(request(), OWN, b"c1", NOW)
    handler.result = {"opened": "again?"}

    again = desk.on_request(request(), OWN, b"c2", NOW + 5)

    assert len(handler.calls) == 1
    assert again.correlation == b"c2" and not again.ran
    answer = protocol.decode(protocol.CommandResponse, again.payload)
    assert answer.duplicate is True
    assert answer.model_copy(update={"duplicate": False}) == first.response


def test_a_redelivery_after_a_restart_does_not_run_again(db_path):
    handler = Recorder()
    desk, conn = open_desk(db_path, **{"open-gate": handler})
    desk.on_request(request(), OWN, None, NOW)
    conn.close()

    reopened = Recorder()
    desk, conn = open_desk(db_path, **{"open-gate": reopened})
    reply = desk.on_request(request(), OWN, None, NOW + 10)
    conn.close()

    assert reopened.calls == []
    assert reply.response.duplicate and reply.response.ok
    assert reply.response.result == {"opened": True}


class Killed(BaseException):
    """The daemon dies in the middle of a command."""


def test_a_command_cut_short_by_a_crash_is_never_run_again(db_path):
    def dies(args: Any, now: float) -> CommandOutcome:
        raise Killed

    desk, conn = open_desk(db_path, **{"open-gate": dies})
    with pytest.raises(Killed):
        desk.on_request(request(), OWN, None, NOW)
    conn.close()

    handler = Recorder()
    desk, conn = open_desk(db_path, **{"open-gate": handler})
    reply = desk.on_request(request(), OWN, None, NOW + 1)
    conn.close()

    assert handler.calls == []
    assert (reply.response.ok, reply.response.code, reply.response.duplicate) == (
        False,
        CommandCode.INTERRUPTED,
        True,
    )


def test_an_expired_command_never_runs(gate):
    desk, handler = gate

    reply = desk.on_request(request(expires=NOW - 0.5), OWN, None, NOW)
    again = desk.on_request(request(expires=NOW - 0.5), OWN, None, NOW + 1)

    assert handler.calls == []
    assert (reply.response.ok, reply.response.code) == (False, Rejection.EXPIRED)
    assert "expired 0.5 s ago" in reply.response.result["reason"]
    assert again.response.duplicate and again.response.code == Rejection.EXPIRED


def test_an_expiry_too_far_ahead_is_refused(gate):
    desk, handler = gate

    reply = desk.on_request(request(expires=NOW + MAX_AHEAD + 1), OWN, None, NOW)

    assert handler.calls == []
    assert reply.response.code == CommandRefusal.EXPIRES_TOO_FAR


def test_an_unknown_command_is_refused_with_the_known_ones(gate):
    desk, handler = gate

    reply = desk.on_request(request(name="self-destruct"), OWN, None, NOW)

    assert handler.calls == []
    assert reply.response.code == Rejection.UNKNOWN_COMMAND
    assert reply.response.result["reason"] == "unknown command 'self-destruct'; known: open-gate"


def test_a_known_name_without_a_handler_here_is_unknown(gate):
    desk, _ = gate
    reply = desk.on_request(request(name="print-test"), OWN, None, NOW)
    assert reply.response.code == Rejection.UNKNOWN_COMMAND


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"seconds": "2"}, "seconds"),  # strict: text is not a number
        ({"seconds": True}, "seconds"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": 31}, "seconds"),
        ({"seconds": 2, "force": True}, "force"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(gate, args, field):
    desk, handler = gate

    reply = desk.on_request(request(args=args), OWN, None, NOW)

    assert handler.calls == []
    assert (reply.response.ok, reply.response.code) == (False, CommandRefusal.BAD_ARGS)
    assert reply.response.result["reason"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    "topic",
    [
        TOPICS.cmd_response("gate-2"),  # another device's answers
        TOPICS.config_desired("gate-1"),  # ours, but not for answers
        "elsewhere/anything",
    ],
)
def test_answers_never_go_where_a_requester_points_outside_cmd_res(gate, topic):
    desk, handler = gate

    reply = desk.on_request(request(), topic, b"c", NOW)

    assert handler.calls == []
    assert reply.topic == OWN
    assert reply.response.code == CommandRefusal.RESPONSE_TOPIC
    assert reply.response.id == "cmd-00000001"
    # not remembered: the same id sent properly still runs
    assert desk.on_request(request(), OWN, b"c", NOW).ran


def test_a_request_without_a_response_topic_is_answered_on_cmd_res(gate):
    desk, handler = gate
    reply = desk.on_request(request(), None, None, NOW)
    assert reply.topic == OWN and reply.ran and len(handler.calls) == 1


def test_a_retained_request_is_refused_and_an_empty_one_ignored(gate):
    desk, handler = gate

    retained = desk.on_request(request(), OWN, None, NOW, retained=True)
    cleared = desk.on_request(b"", OWN, None, NOW)

    assert handler.calls == []
    assert retained.response.code == CommandRefusal.RETAINED
    assert cleared is None


@pytest.mark.parametrize(
    ("payload", "code", "ident"),
    [
        (b"\xff\xfe", Rejection.NOT_UTF8, ""),
        (b"open the gate", Rejection.NOT_JSON, ""),
        (b"[1, 2]", Rejection.BAD_SHAPE, ""),
        (b'{"v": 2, "type": "command"}', Rejection.BAD_SCHEMA_VERSION, ""),
        (
            b'{"v": 1, "type": "command", "id": "cmd-00000009", "name": "open-gate"}',
            Rejection.BAD_SHAPE,
            "cmd-00000009",
        ),
        (b'{"v": 1, "type": "command", "id": "x", "name": 5}', Rejection.BAD_SHAPE, ""),
    ],
)
def test_a_malformed_request_is_answered_with_its_rejection(gate, payload, code, ident):
    desk, handler = gate

    reply = desk.on_request(payload, OWN, b"c", NOW)

    assert handler.calls == []
    assert (reply.response.code, reply.response.id, reply.topic) == (code, ident, OWN)
    assert reply.response.result["reason"].startswith(str(code))


def test_a_failing_handler_is_answered_and_the_desk_goes_on(db_path):
    def broken_relay(args: Any, now: float) -> CommandOutcome:
        raise DriverError("relay did not answer")

    def buggy(args: Any, now: float) -> CommandOutcome:
        raise ZeroDivisionError("oops")

    desk, conn = open_desk(db_path, **{"open-gate": broken_relay, "identify": buggy})

    failed = desk.on_request(request(), OWN, None, NOW)
    crashed = desk.on_request(request("identify", "cmd-00000002"), OWN, None, NOW)
    conn.close()

    assert (failed.response.code, failed.response.result) == (
        CommandCode.FAILED,
        {"reason": "relay did not answer"},
    )
    assert crashed.response.code == CommandCode.FAILED
    assert "oops" in crashed.response.result["reason"]


@pytest.mark.parametrize(
    ("result", "code"),
    [
        ({"big": "x" * 1_100_000}, CommandCode.RESULT_TOO_LARGE),
        ({"raw": b"bytes"}, CommandCode.FAILED),
        ({"nan": float("nan")}, CommandCode.FAILED),
    ],
)
def test_a_result_that_cannot_be_sent_is_a_failure(db_path, result, code):
    desk, conn = open_desk(db_path, diagnostics=Recorder(result))
    reply = desk.on_request(request("diagnostics"), OWN, None, NOW)
    conn.close()
    assert (reply.response.ok, reply.response.code) == (False, code)
    assert len(reply.payload) < protocol.MAX_PAYLOAD_BYTES


def test_a_malformed_outcome_is_a_failure(db_path):
    desk, conn = open_desk(db_path, diagnostics=lambda a, n: CommandOutcome(True, "x", "no"))
    reply = desk.on_request(request("diagnostics"), OWN, None, NOW)
    conn.close()
    assert reply.response.code == CommandCode.FAILED


def test_old_ids_are_pruned_when_no_command_can_still_run(gate):
    desk, handler = gate
    desk.on_request(request(expires=NOW + MAX_AHEAD), OWN, None, NOW)

    assert desk.prune(NOW + desk.keep_seconds - 1) == 0
    assert desk.prune(NOW + desk.keep_seconds + 1) == 1
    # a redelivery that late is past its expiry: refused, not run again
    late = desk.on_request(request(expires=NOW + MAX_AHEAD), OWN, None, NOW + desk.keep_seconds + 2)
    assert late.response.code == Rejection.EXPIRED
    assert len(handler.calls) == 1


def test_requests_prune_the_table_as_they_come(gate):
    desk, _ = gate
    desk.on_request(request(), OWN, None, NOW)
    desk.on_request(request(ident="cmd-00000002", expires=NOW + 2e5), OWN, None, NOW + 2e5 - 1)
    rows = desk._conn.execute("SELECT id FROM commands").fetchall()
    assert rows == [("cmd-00000002",)]


def test_the_desk_refuses_a_table_that_would_forget_runnable_ids(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(ValueError, match="keep_seconds"):
        CommandDesk(conn, "gate-1", {}, topics=TOPICS, keep_seconds=60)
    with pytest.raises(ValueError, match="reboot"):
        CommandDesk(conn, "gate-1", {"reboot": Recorder()}, topics=TOPICS)
    conn.close()


def test_every_command_has_an_argument_model_with_defaults():
    assert set(ARG_MODELS) == set(COMMAND_NAMES)
    for name in COMMAND_NAMES:
        protocol.CommandRequest(id="cmd-00000001", name=name, expires=NOW)  # name fits
        ARG_MODELS[name].model_validate({})


def test_the_logs_command_returns_the_ring_tail(db_path):
    ring = LogRing(10)
    log = logging.getLogger("test.commands.logs")
    log.addHandler(ring)
    log.setLevel(logging.DEBUG)
    try:
        for n in range(5):
            log.info("line %d password=hunter%d", n, n)
        log.warning("a warning")
    finally:
        log.removeHandler(ring)
    desk, conn = open_desk(db_path, logs=logs_handler(ring.tail))

    three = desk.on_request(request("logs", args={"lines": 3}), OWN, None, NOW)
    warned = desk.on_request(request("logs", "cmd-00000002", {"level": "WARNING"}), OWN, None, NOW)
    too_many = desk.on_request(request("logs", "cmd-00000003", {"lines": 501}), OWN, None, NOW)
    conn.close()

    lines = three.response.result["lines"]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "line 3 password=********",
        "line 4 password=********",
        "a warning",
    ]
    assert len(warned.response.result["lines"]) == 1
    assert too_many.response.code == CommandRefusal.BAD_ARGS
    assert "hunter" not in json.dumps(three.response.result)
