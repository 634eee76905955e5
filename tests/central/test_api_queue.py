"""Central's queue API (central/api_queue.py) through FastAPI's test client, over a real
central service (its owner thread, its queue desk and store) connected to a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from queue_desk_rig import QUEUE, T0, WARSAW, issue

from central.api import create_app
from central.service import CentralService
from central.settings import CentralConfig
from entrada.broker import PrivateBroker

#: The office, named on its pages.
TOWN_HALL = {**QUEUE, "site_name": "Town Hall"}


@pytest.fixture
def service(
    tmp_path: Path, broker: PrivateBroker, config_factory: Callable[..., CentralConfig]
) -> Iterator[CentralService]:
    cfg = config_factory(tmp_path / "central", broker.port, queue=TOWN_HALL)
    svc = CentralService(cfg, clock=lambda: T0)
    svc.start()
    assert svc.wait_ready(10)
    yield svc
    svc.stop()


@pytest.fixture
def client(service: CentralService) -> Iterator[TestClient]:
    with TestClient(create_app(service.db_path, clock=lambda: T0, service=service)) as c:
        yield c


def op(client: TestClient, name: str, **args: Any) -> Any:
    return client.post("/api/queue/ops", json={"op": name, "args": args})


def test_sign_in_call_recall_finish(service: CentralService, client: TestClient) -> None:
    (ticket,) = issue(service, "reg")

    signed = op(client, "sign_in", counter="c1", staff="ada")
    called = op(client, "call_next", counter="c1")
    recalled = op(client, "recall", counter="c1")
    finished = op(client, "finish_service", counter="c1")

    assert signed.status_code == 200 and signed.json()["code"] == "queue.signed_in"
    assert called.status_code == 200
    assert called.json()["result"]["ticket"]["label"] == "A001"
    assert called.json()["result"]["ticket"]["id"] == ticket
    assert recalled.json()["code"] == "queue.recalled"
    assert recalled.json()["result"]["call"]["recall"] == 1
    assert finished.json()["code"] == "queue.finished"
    assert finished.json()["result"]["ticket"]["state"] == "done"


def test_call_next_at_a_closed_counter_is_refused(
    service: CentralService, client: TestClient
) -> None:
    issue(service, "reg")

    answer = op(client, "call_next", counter="c1")

    assert answer.status_code == 409
    assert answer.json()["ok"] is False
    assert answer.json()["code"] == "queue.refused.counter_closed"


def test_a_retried_op_id_is_answered_as_a_duplicate(
    service: CentralService, client: TestClient
) -> None:
    issue(service, "pay", 2)
    op(client, "sign_in", counter="c2", staff="bob")
    body = {"op_id": "desk-7", "op": "call_next", "args": {"counter": "c2"}}

    first = client.post("/api/queue/ops", json=body)
    again = client.post("/api/queue/ops", json=body)

    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert again.status_code == 200
    assert again.json()["result"]["ticket"]["label"] == "B01"
    assert op(client, "board").json()["result"]["board"]["services"][1]["waiting"] == 1


def test_transfer_to_another_service(service: CentralService, client: TestClient) -> None:
    (ticket,) = issue(service, "reg")

    moved = op(client, "transfer", ticket_id=ticket, to_service="pay")
    status = client.get(f"/api/queue/tickets/{ticket}")

    assert moved.status_code == 200 and moved.json()["code"] == "queue.transferred"
    assert status.json()["service"] == "pay" and status.json()["label"] == "A001"


def test_booking_gives_a_check_in_code(client: TestClient) -> None:
    booked = client.post(
        "/api/queue/appointments",
        json={"service": "reg", "at": "2026-03-10 14:30", "note": "passport", "op_id": "bk-1"},
    )
    again = client.post(
        "/api/queue/appointments",
        json={"service": "reg", "at": "2026-03-10 14:30", "op_id": "bk-1"},
    )

    assert booked.status_code == 201
    doc = booked.json()
    assert doc["code"].isdigit() and len(doc["code"]) == 6
    assert doc["appointment_id"] == "bk-1"
    assert doc["slot"] == datetime(2026, 3, 10, 14, 30, tzinfo=WARSAW).timestamp()
    assert doc["slot_local"] == "2026-03-10T14:30+01:00"
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["code"] == doc["code"]


def test_booking_refusals(client: TestClient) -> None:
    past = client.post("/api/queue/appointments", json={"service": "reg", "at": T0 - 7200})
    unknown = client.post("/api/queue/appointments", json={"service": "nope", "at": T0 + 60})

    assert past.status_code == 409 and past.json()["code"] == "queue.refused.too_late"
    assert unknown.status_code == 409 and unknown.json()["code"] == "queue.refused.unknown_service"


def test_ticket_status_and_page(service: CentralService, client: TestClient) -> None:
    _first, second = issue(service, "reg", 2)

    status = client.get(f"/api/queue/tickets/{second}")
    page = client.get(f"/t/{second}")

    assert status.status_code == 200
    doc = status.json()
    assert (doc["label"], doc["state"], doc["ahead"]) == ("A002", "waiting", 1)
    assert doc["service_name"] == "Registration" and doc["estimated_wait"] > 0
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<p class="label">A002</p>' in page.text
    assert '<meta http-equiv="refresh" content="15">' in page.text
    assert "People ahead: 1" in page.text and "Town Hall" in page.text


def test_page_of_a_called_and_of_a_finished_ticket(
    service: CentralService, client: TestClient
) -> None:
    (ticket,) = issue(service, "reg")
    op(client, "sign_in", counter="c1", staff="ada")
    op(client, "call_next", counter="c1")

    called = client.get(f"/t/{ticket}").text
    op(client, "finish_service", counter="c1")
    done = client.get(f"/t/{ticket}").text

    assert "Please go to Counter 1" in called
    assert "Served" in done and "http-equiv" not in done  # closed: no more refreshing


def test_unknown_and_malformed_tickets(client: TestClient) -> None:
    assert client.get("/api/queue/tickets/2026-03-10:reg:999").status_code == 404
    assert client.get("/t/2026-03-10:reg:999").status_code == 404
    assert client.get("/api/queue/tickets/not-a-ticket").status_code == 422
    bad = client.get("/t/%3Cscript%3E")
    assert bad.status_code == 422 and "<script>" not in bad.text


@pytest.mark.parametrize(
    "body",
    [
        {"op": "launch", "args": {}},  # not a staff operation
        {"op": "issue_ticket", "args": {"service": "reg"}},  # a dispenser's, not staff's
        {"op": "call_next", "args": {}},  # no counter
        {"op": "call_next", "args": {"counter": "c1"}, "extra": 1},
        {"op_id": "has space", "op": "board"},
        {"op": "sign_in", "args": {"counter": "c1", "staff": ["x"]}},
    ],
)
def test_bad_operations_are_422(client: TestClient, body: dict[str, Any]) -> None:
    answer = client.post("/api/queue/ops", json=body)

    assert answer.status_code == 422, answer.text


def test_bad_bodies_are_422(client: TestClient) -> None:
    not_json = client.post(
        "/api/queue/ops", content=b"{op:", headers={"content-type": "application/json"}
    )
    bad_at = client.post("/api/queue/appointments", json={"service": "reg", "at": "soon"})
    skipped = client.post(
        "/api/queue/appointments", json={"service": "reg", "at": "2026-03-29 02:30"}
    )
    no_time = client.post("/api/queue/appointments", json={"service": "reg", "at": "2026-03-10"})
    nan = client.post(
        "/api/queue/appointments",
        content=b'{"service": "reg", "at": NaN}',
        headers={"content-type": "application/json"},
    )

    huge = client.post(
        "/api/queue/ops",
        content=b'{"op": "book_appointment", "args": {"service": "reg", "slot": 1e400}}',
        headers={"content-type": "application/json"},
    )
    far = op(client, "book_appointment", service="reg", slot=1e300)

    assert not_json.status_code == 422
    assert huge.status_code == 422 and far.status_code == 422
    assert bad_at.status_code == 422 and "soon" in bad_at.text
    assert skipped.status_code == 422 and "skip" in skipped.text  # spring forward in Warsaw
    assert no_time.status_code == 422
    assert nan.status_code == 422
    assert client.get("/api/queue/stats?by=weather").status_code == 422


def test_board_and_stats(service: CentralService, client: TestClient) -> None:
    issue(service, "reg", 2)
    op(client, "sign_in", counter="c1", staff="ada")
    op(client, "call_next", counter="c1")
    op(client, "finish_service", counter="c1")

    board = client.get("/api/queue/board").json()
    by_service = client.get("/api/queue/stats").json()
    by_staff = client.get("/api/queue/stats?by=staff").json()

    assert [s["waiting"] for s in board["services"]] == [1, 0]
    assert board["recent"][0]["label"] == "A001"
    assert by_service["by"] == "service" and by_service["figures"]["reg"]["served"] == 1
    assert by_staff["figures"]["ada"]["served"] == 1


def test_unavailable_queue_is_503(
    tmp_path: Path, broker: PrivateBroker, config_factory: Callable[..., CentralConfig]
) -> None:
    stopped = CentralService(config_factory(tmp_path / "c", broker.port, queue=TOWN_HALL))

    class Slow:
        running = True
        desk = None
        cfg = stopped.cfg

        def on_owner(self, fn: Any, timeout: float) -> Any:
            raise TimeoutError

    with TestClient(create_app(stopped.db_path, service=stopped)) as c:
        not_running = c.get("/api/queue/board")
    with TestClient(create_app(stopped.db_path, service=Slow())) as c:  # type: ignore[arg-type]
        too_slow = op(c, "board")

    assert not_running.status_code == 503
    assert too_slow.status_code == 503 and "did not answer" in too_slow.json()["detail"]


def test_booking_through_the_ops_route_takes_a_local_time(client: TestClient) -> None:
    answer = op(client, "book_appointment", service="pay", slot="2026-03-10 15:00")

    assert answer.status_code == 200
    appointment = answer.json()["result"]["appointment"]
    assert appointment["slot"] == datetime(2026, 3, 10, 15, 0, tzinfo=WARSAW).timestamp()
    assert len(appointment["code"]) == 6
