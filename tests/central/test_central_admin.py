"""Admin functions on the store file (used by the CLI while the service runs)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from central import admin
from central.registry import Presence
from central.sqlite_store import SqliteStorage
from entrada.errors import StoreError
from entrada.protocol import Event, Status


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite"


def test_set_wristbands_normalises_and_returns_head(db):
    head = admin.set_wristbands(db, [("de:ad:be:ef", "active", "Ann"), ("CAFEBABE", "blocked", "")])
    again = admin.set_wristbands(db, [("DEADBEEF", "active", "Ann")])

    assert (head, again) == (2, 2)
    with SqliteStorage(db, readonly=True) as s:
        assert s.wristband("DEADBEEF").holder == "Ann"
        assert s.wristband("CAFEBABE").holder is None
    assert admin.catalog_head(db) == 2


def test_set_wristbands_reports_every_bad_row_and_writes_nothing(db):
    with pytest.raises(admin.CatalogInputError) as err:
        admin.set_wristbands(
            db,
            [
                ("DEADBEEF", "active", None),
                ("xyz", "active", None),
                ("CAFEBABE", "stolen", None),
                ("a", "b", "c", 1, 2),
            ],
        )
    assert len(err.value.errors) == 3
    assert "row 2" in err.value.errors[0] and "row 3" in err.value.errors[1]
    assert not db.exists() or admin.catalog_head(db) == 0


def test_delete_wristbands(db):
    admin.set_wristbands(db, [("DEADBEEF", "active", None)])
    assert admin.delete_wristbands(db, ["de:ad:be:ef", "00000000"]) == 2


def test_import_csv(db, tmp_path):
    path = tmp_path / "bands.csv"
    path.write_text(
        "\ufeffUID,Status,Holder,valid_until\n"
        "DEADBEEF,active,Ann,2030-01-01T00:00:00+00:00\n"
        "CAFEBABE,blocked,,\n"
        "0A0B0C0D,,Bob,1900000000\n",
        encoding="utf-8",
    )
    assert admin.import_wristbands_csv(db, path) == 3
    assert admin.import_wristbands_csv(db, path) == 3  # unchanged rows append nothing
    with SqliteStorage(db, readonly=True) as s:
        assert s.wristband("DEADBEEF").valid_until == 1893456000.0
        assert s.wristband("0A0B0C0D").status == "active"


def test_import_csv_lists_every_error(db):
    text = (
        "uid,status,holder,valid_until\n"
        "DEADBEEF,active,Ann,2030-01-01T00:00:00\n"  # no offset
        "zz,active,Ann,\n"
        "CAFEBABE,active,,tomorrow\n"
        "0A0B0C0D,active,,\n"
        "0a0b0c0d,blocked,,\n"  # same uid again
        "01020304,active,,,extra\n"
    )
    with pytest.raises(admin.CatalogInputError) as err:
        admin.import_wristbands_csv(db, io.StringIO(text))
    lines = [e.split(":")[0] for e in err.value.errors]
    assert lines == ["line 2", "line 3", "line 4", "line 6", "line 7"]


@pytest.mark.parametrize("header", ["holder,status\n", "uid,colour\n", ""])
def test_import_csv_bad_header(db, header):
    with pytest.raises(admin.CatalogInputError):
        admin.import_wristbands_csv(db, io.StringIO(header + "DEADBEEF,x\n"))


def test_import_missing_file(db, tmp_path):
    with pytest.raises(admin.CatalogInputError, match="cannot read"):
        admin.import_wristbands_csv(db, tmp_path / "missing.csv")


def test_reports_while_the_service_connection_is_open(db):
    with SqliteStorage(db) as service_store:
        service_store.apply_status(
            Status(device="g1", role="gate", state="online", epoch=1, ts=0.0), now=100.0
        )
        service_store.apply_status(
            Status(device="g2", role="gate", state="online", epoch=1, ts=0.0), now=10.0
        )
        service_store.store_events(
            "g1",
            [
                Event(id=uuid.uuid4().hex, stream="gate", seq=n, kind=k, ts=0.0)
                for n, k in enumerate(["gate.grant", "gate.grant", "gate.deny"], 1)
            ],
            now=100.0,
        )
        admin.set_wristbands(db, [("DEADBEEF", "active", None)])  # a second writer
        assert service_store.catalog_head() == 1

        devices = admin.list_devices(db, offline_after=60.0, now=120.0)
        counts = admin.event_counts(db)

    assert [(d["device"], d["state"]) for d in devices] == [("g1", "online"), ("g2", "stale")]
    assert (devices[0]["role"], devices[0]["last_seen_text"]) == ("gate", "20s ago")
    assert admin.device_views(db, 60.0, now=120.0)[1].presence is Presence.STALE
    assert counts == {"gate.deny": 1, "gate.grant": 2}


def test_reports_without_a_store(db):
    with pytest.raises(StoreError, match="no central store"):
        admin.event_counts(db)


def test_list_devices_for_the_cli(db):
    with SqliteStorage(db) as s:
        s.store_events(
            "g1", [Event(id=uuid.uuid4().hex, stream="a", seq=1, kind="x", ts=0.0)], now=0.0
        )
    (row,) = admin.list_devices(db, 60.0, now=4000.0)
    assert row["role"] == "-" and row["state"] == "unknown"
    assert row["last_seen_text"] == "67m ago"
    assert {"device", "epoch", "outbox_depth", "faults", "software"} <= set(row)
