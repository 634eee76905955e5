"""``entrada queue``: each command over MQTT 5 to a real central service (owner thread,
queue desk, store) through a real Mosquitto, plus the ``--at`` parser on its own."""

from __future__ import annotations

import json
import runpy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from central.service import CentralService, load_central_config
from entrada.broker import PrivateBroker
from entrada.cli_queue import main, slot_time

#: tests/central/queue_desk_rig.py, shared with the API's tests (tests/central is not on
#: sys.path when only this folder runs).
_rig = runpy.run_path(str(Path(__file__).parents[1] / "central" / "queue_desk_rig.py"))
T0, WARSAW, QUEUE, issue = _rig["T0"], _rig["WARSAW"], _rig["QUEUE"], _rig["issue"]


def write_config(path: Path, data_dir: Path, port: int) -> Path:
    site = f"test{uuid.uuid4().hex[:8]}"
    doc: dict[str, Any] = {
        # a site of its own: the broker is shared by the module's tests
        "central": {"site": site, "data_dir": str(data_dir), "client_id": "central"},
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive": 5},
        "ingest": {"batch_window": 0.01},
        "queue": QUEUE,
    }
    path.write_bytes(tomli_w.dumps(doc).encode())
    return path


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def config(tmp_path: Path, broker: PrivateBroker) -> Path:
    return write_config(tmp_path / "central.toml", tmp_path / "central", broker.port)


@pytest.fixture
def central(config: Path) -> Iterator[CentralService]:
    svc = CentralService(load_central_config(config), clock=lambda: T0)
    svc.start()
    assert svc.wait_ready(10)
    yield svc
    svc.stop()


@pytest.fixture
def queue_cli(config: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """``queue_cli("next", "c1")`` -> (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["queue", *args, "--config", str(config), "--timeout", "5"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_sign_in_next_recall_finish(central: CentralService, queue_cli: Any) -> None:
    issue(central, "reg", 2)

    signed = queue_cli("sign-in", "c1", "ada")
    called = queue_cli("next", "c1")
    recalled = queue_cli("recall", "c1")
    finished = queue_cli("finish", "c1")

    assert signed[0] == 0 and signed[1].startswith("ok [queue.signed_in]")
    assert called[0] == 0 and called[1].startswith("ok [queue.called] A001\n")
    assert "call 2026-03-10:reg:1#1 to c1" in called[1]
    assert recalled[1].startswith("ok [queue.recalled] A001") and "recall 1" in recalled[1]
    assert finished[0] == 0 and finished[1].startswith("ok [queue.finished] A001")
    assert "done" in finished[1]


def test_next_at_a_closed_counter_is_refused(central: CentralService, queue_cli: Any) -> None:
    issue(central, "reg")

    code, out, _ = queue_cli("next", "c2")

    assert code == 1
    assert out.startswith("refused [queue.refused.counter_closed]")


def test_a_retried_op_id_is_a_duplicate(central: CentralService, queue_cli: Any) -> None:
    issue(central, "pay", 2)
    queue_cli("sign-in", "c2", "bob")

    first = queue_cli("next", "c2", "--op-id", "desk-1")
    again = queue_cli("next", "c2", "--op-id", "desk-1")
    status = queue_cli("status", "2026-03-10:pay:2")

    assert first[0] == again[0] == 0
    assert "B01" in first[1] and "done before" not in first[1]
    assert again[1].startswith("ok [queue.called] B01 (op desk-1 was done before")
    assert status[1] == "B02 (2026-03-10:pay:2), pay: waiting, 0 ahead, wait under a minute\n"


def test_transfer(central: CentralService, queue_cli: Any) -> None:
    (ticket,) = issue(central, "reg")

    moved = queue_cli("transfer", ticket, "--service", "pay")
    nowhere = queue_cli("transfer", ticket)
    unknown = queue_cli("transfer", ticket, "--counter", "c9")

    assert moved[0] == 0 and moved[1].startswith("ok [queue.transferred] A001")
    assert "A001 (2026-03-10:reg:1), pay: waiting" in moved[1]
    assert nowhere[0] == 2 and "--service" in nowhere[2]
    assert unknown[0] == 1 and "queue.refused.unknown_counter" in unknown[1]


def test_park_resume_cancel(central: CentralService, queue_cli: Any) -> None:
    (ticket,) = issue(central, "reg")

    assert queue_cli("park", ticket)[1].startswith("ok [queue.parked] A001")
    assert queue_cli("resume", ticket)[1].startswith("ok [queue.resumed] A001")
    assert queue_cli("cancel", ticket, "--reason", "left")[1].startswith("ok [queue.cancelled]")
    assert queue_cli("cancel", ticket)[0] == 1


def test_book_prints_the_check_in_code(central: CentralService, queue_cli: Any) -> None:
    code, out, _ = queue_cli("book", "reg", "--at", "2026-03-10 14:30", "--note", "passport")
    lines = out.splitlines()

    assert code == 0 and lines[0] == "ok [queue.booked]"
    assert "reg at 2026-03-10 14:30 (Europe/Warsaw), booked" in lines[1]
    assert lines[2].startswith("  check-in code: ") and lines[2][-6:].isdigit()
    appointment_id = lines[1].split()[1].rstrip(":")
    assert queue_cli("cancel-booking", appointment_id)[0] == 0
    assert queue_cli("cancel-booking", appointment_id)[0] == 1


def test_book_json_and_bad_times(central: CentralService, queue_cli: Any) -> None:
    code, out, _ = queue_cli("book", "pay", "--at", "2026-03-10T15:00:00+01:00", "--json")
    bad = queue_cli("book", "pay", "--at", "tomorrow")

    answer = json.loads(out)
    assert code == 0 and answer["code"] == "queue.booked"
    assert (
        answer["result"]["appointment"]["slot"]
        == datetime(2026, 3, 10, 15, tzinfo=WARSAW).timestamp()
    )
    assert bad[0] == 2 and "--at" in bad[2]


def test_queries(central: CentralService, queue_cli: Any) -> None:
    issue(central, "reg", 2)
    queue_cli("sign-in", "c1", "ada")
    queue_cli("next", "c1")
    queue_cli("finish", "c1")

    stats = queue_cli("stats", "--by", "staff", "--json")
    table = queue_cli("stats")
    board = queue_cli("board")
    unconfirmed = queue_cli("unconfirmed")
    unknown = queue_cli("status", "2026-03-10:reg:99")

    assert json.loads(stats[1])["result"]["figures"]["ada"]["served"] == 1
    assert table[1].splitlines()[1].split()[:3] == ["reg", "2", "1"]
    assert "open counters: c1" in board[1] and "Registration" in board[1]
    assert unconfirmed == (0, "every call was confirmed by every display\n", "")
    assert unknown[0] == 1 and "no ticket" in unknown[2]


def test_no_central_means_no_answer(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["queue", "board", "--config", str(config), "--timeout", "0.3"])

    assert code == 3
    assert "no answer from central" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-10 14:30", datetime(2026, 3, 10, 14, 30, tzinfo=WARSAW).timestamp()),
        ("2026-07-01T09:00", datetime(2026, 7, 1, 9, 0, tzinfo=WARSAW).timestamp()),
        ("2026-03-10T14:30+00:00", datetime(2026, 3, 10, 14, 30, tzinfo=UTC).timestamp()),
        ("1773150000", 1773150000.0),
    ],
)
def test_slot_time(text: str, expected: float) -> None:
    assert slot_time(text, "Europe/Warsaw") == expected


@pytest.mark.parametrize(
    "text", ["2026-03-29 02:30", "2026-03-10", "soon", "nan", "inf", "-5", "1e300"]
)
def test_slot_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        slot_time(text, "Europe/Warsaw")
