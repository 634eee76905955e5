"""Central's HTTP API, through FastAPI's test client and once over real loopback HTTP."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from history_rig import OTHER, T0, UID, Rig

from central.api import ApiServer, create_app
from central.replay import Replayer
from central.sqlite_store import SqliteStorage
from entrada.errors import EntradaError
from entrada.protocol import WristbandData

NOW = T0 + 3600.0
LOW = "04CAFE0001"  # a UID-only wristband: never a tab


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    rig = Rig(tmp_path / "central.sqlite")
    rig.wristband(UID, holder="Ada", tab_limit_minor=1000)
    rig.wristband(LOW, assurance="uid_only")
    rig.entitlement("ent-s", "strict")
    rig.tap("entrance", T0, offline=5.0)  # denied offline: a conflict once replayed
    Replayer(settle_seconds=0).run_once(rig.store, NOW)
    rig.close()
    yield rig.path


@pytest.fixture
def client(db: Path) -> Iterator[TestClient]:
    with TestClient(create_app(db, clock=lambda: NOW)) as c:
        yield c


def test_health(client: TestClient) -> None:
    answer = client.get("/api/health")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok" and answer.json()["catalog_head"] > 0


def test_health_without_a_store(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "missing.sqlite")) as c:
        answer = c.get("/api/health")

    assert answer.status_code == 503 and answer.json()["status"] == "unavailable"


def test_a_wristband_history(client: TestClient) -> None:
    answer = client.get(f"/api/wristbands/{UID.lower()}/history")

    assert answer.status_code == 200
    doc = answer.json()
    assert doc["uid"] == UID and doc["wristband"]["holder"] == "Ada"
    assert [(i["kind"], i["code"], i["offline"]) for i in doc["items"]] == [
        ("denied", "denied.offline", True)
    ]
    assert doc["totals"]["currency"] == "EUR"


@pytest.mark.parametrize(("uid", "status"), [(OTHER, 404), ("not-a-uid", 422), ("12", 422)])
def test_a_history_of_nothing(client: TestClient, uid: str, status: int) -> None:
    assert client.get(f"/api/wristbands/{uid}/history").status_code == status


def test_conflicts(client: TestClient) -> None:
    answer = client.get("/api/conflicts")

    assert answer.status_code == 200
    (found,) = answer.json()["conflicts"]
    assert found["conflict"] == "denied_offline_would_admit"
    assert found["uid"] == UID and found["device"] == "entrance"
    assert found["sentence"].startswith("denied offline (denied.offline), would have been")
    assert client.get("/api/conflicts", params={"since": NOW}).json() == {"conflicts": []}
    assert client.get("/api/conflicts", params={"since": "soon"}).status_code == 422


def test_a_posting(client: TestClient) -> None:
    answer = client.post(
        f"/api/wristbands/{UID}/postings",
        json={"amount_minor": 450, "description": "Lemonade", "ref": "bar-7"},
    )

    assert answer.status_code == 201
    assert answer.json() == {
        "ref": "bar-7",
        "uid": UID,
        "amount_minor": 450,
        "description": "Lemonade",
        "catalog_version": answer.json()["catalog_version"],
        "owed_minor": 450,
        "duplicate": False,
    }
    history = client.get(f"/api/wristbands/{UID}/history").json()
    assert history["totals"]["posted_minor"] == 450


def test_a_retried_posting_is_written_once(client: TestClient) -> None:
    body = {"amount_minor": 450, "ref": "bar-7"}
    first = client.post(f"/api/wristbands/{UID}/postings", json=body)

    again = client.post(f"/api/wristbands/{UID}/postings", json=body)

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["catalog_version"] == first.json()["catalog_version"]


@pytest.mark.parametrize(
    ("uid", "amount", "code", "key"),
    [
        (LOW, 100, "denied.low_assurance", "denied.low_assurance"),
        (UID, 1001, "denied.tab_limit", "denied.tab_limit"),
    ],
)
def test_a_refused_posting(client: TestClient, uid: str, amount: int, code: str, key: str) -> None:
    answer = client.post(f"/api/wristbands/{uid}/postings", json={"amount_minor": amount})

    assert answer.status_code == 409
    assert answer.json()["code"] == code
    assert answer.json()["explanation"]["key"] == key


@pytest.mark.parametrize(
    "body",
    [
        {"amount_minor": 0},
        {"amount_minor": -5},
        {"amount_minor": "450"},
        {"amount_minor": 4.5},
        {"amount_minor": 450, "colour": "red"},
        {"description": "no amount"},
        {"amount_minor": 450, "ref": "bad ref!"},
        {"amount_minor": 450, "description": "x" * 201},
    ],
)
def test_a_bad_posting_body(client: TestClient, body: dict[str, Any]) -> None:
    answer = client.post(f"/api/wristbands/{UID}/postings", json=body)

    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_a_body_that_is_not_json(client: TestClient) -> None:
    answer = client.post(
        f"/api/wristbands/{UID}/postings",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 422


@pytest.mark.parametrize("what", ["postings", "payments", "timestops"])
def test_writes_to_an_unknown_wristband(client: TestClient, what: str) -> None:
    body = {} if what == "timestops" else {"amount_minor": 100}

    assert client.post(f"/api/wristbands/{OTHER}/{what}", json=body).status_code == 404
    assert client.post(f"/api/wristbands/zz/{what}", json=body).status_code == 422


def test_a_payment(client: TestClient) -> None:
    client.post(f"/api/wristbands/{UID}/postings", json={"amount_minor": 450})

    answer = client.post(
        f"/api/wristbands/{UID}/payments", json={"amount_minor": 450, "method": "card"}
    )

    assert answer.status_code == 201
    assert (answer.json()["owed_minor"], answer.json()["method"]) == (0, "card")
    totals = client.get(f"/api/wristbands/{UID}/history").json()["totals"]
    assert (totals["paid_minor"], totals["balance_minor"]) == (450, 0)
    assert client.post(f"/api/wristbands/{UID}/payments", json={}).status_code == 422


def test_a_timestop(client: TestClient) -> None:
    answer = client.post(f"/api/wristbands/{UID}/timestops", json={"at": NOW - 60, "ref": "k1"})
    default = client.post(f"/api/wristbands/{UID}/timestops", json={})

    assert answer.status_code == 201 and answer.json()["at"] == NOW - 60
    assert default.status_code == 201 and default.json()["at"] == NOW
    kinds = [i["kind"] for i in client.get(f"/api/wristbands/{UID}/history").json()["items"]]
    assert kinds.count("timestop") == 2
    assert client.post(f"/api/wristbands/{UID}/timestops", json={"at": "x"}).status_code == 422


def test_a_posting_before_any_rules_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "central.sqlite"
    with SqliteStorage(path) as store:
        store.catalog_apply([("wristband", UID, WristbandData())], T0)

    with TestClient(create_app(path)) as c:
        answer = c.post(f"/api/wristbands/{UID}/postings", json={"amount_minor": 100})

    assert answer.status_code == 503
    assert "no rules" in answer.json()["detail"]


def url(server: ApiServer) -> str:
    return f"http://127.0.0.1:{server.port}/api/health"


def test_the_server_listens_on_loopback_and_stops(db: Path) -> None:
    server = ApiServer(create_app(db), "127.0.0.1", 0)
    server.start()
    try:
        with urllib.request.urlopen(url(server), timeout=5) as answer:
            status = answer.status
    finally:
        server.stop()

    assert status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url(server), timeout=1)


def test_a_taken_port_is_an_error(db: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ApiServer(create_app(db), "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(EntradaError, match="could not listen"):
            server.start()
