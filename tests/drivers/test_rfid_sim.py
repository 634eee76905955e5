"""The simulated reader: normalises UIDs, records reads, fails on purpose."""

from __future__ import annotations

import pytest

from drivers.rfid import RfidReader
from drivers.rfid_sim import SimRfidReader, normalise_uid
from entrada.errors import DriverError


class Sink:
    def __init__(self) -> None:
        self.uids: list[str] = []
        self.health: list[tuple[bool, str]] = []

    def on_uid(self, uid: str) -> None:
        self.uids.append(uid)

    def on_health(self, ok: bool, reason: str) -> None:
        self.health.append((ok, reason))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def reader(sink: Sink) -> SimRfidReader:
    reader = SimRfidReader()
    reader.start(sink.on_uid, sink.on_health)
    return reader


def test_is_an_rfid_reader() -> None:
    assert isinstance(SimRfidReader(), RfidReader)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("04:a1:b2:c3", "04A1B2C3"),
        ("04a1b2c3d4e5f6", "04A1B2C3D4E5F6"),
        ("04-A1-B2-C3-D4-E5-F6-07-08-09", "04A1B2C3D4E5F6070809"),
    ],
)
def test_uids_are_normalised(given: str, expected: str) -> None:
    assert normalise_uid(given) == expected


@pytest.mark.parametrize(
    "bad", ["", "04A1B2", "04A1B2C3D4", "04A1B2C", "zz:a1:b2:c3", "0x04A1B2C3"]
)
def test_non_uids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalise_uid(bad)


def test_inject_delivers_and_records(reader: SimRfidReader, sink: Sink) -> None:
    reader.inject("04:a1:b2:c3")

    assert sink.uids == reader.reads == ["04A1B2C3"]


def test_double_read_delivers_each_uid_twice(reader: SimRfidReader, sink: Sink) -> None:
    reader.double_read = True

    reader.inject("04a1b2c3")

    assert sink.uids == ["04A1B2C3", "04A1B2C3"]


def test_offline_drops_taps_and_reports_health_once_each_way(reader, sink: Sink) -> None:
    reader.offline = True
    reader.offline = True
    reader.inject("04a1b2c3")
    reader.offline = False
    reader.inject("04a1b2c4")

    assert sink.health == [(False, "simulated offline"), (True, "")]
    assert reader.dropped == ["04A1B2C3"]
    assert sink.uids == ["04A1B2C4"]


def test_a_reader_started_offline_says_so(sink: Sink) -> None:
    reader = SimRfidReader()
    reader.offline = True

    reader.start(sink.on_uid, sink.on_health)

    assert sink.health == [(False, "simulated offline")]


def test_inject_before_start_or_after_stop_is_a_driver_error(sink: Sink) -> None:
    reader = SimRfidReader()
    with pytest.raises(DriverError):
        reader.inject("04a1b2c3")
    reader.start(sink.on_uid, sink.on_health)
    reader.stop()
    reader.stop()

    with pytest.raises(DriverError):
        reader.inject("04a1b2c3")
