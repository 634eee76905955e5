"""The simulated scanner, the simulator channel's ``scan`` verb and the scanner registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.settings import DriversSection
from controller.simchannel import SimChannel, SimClient
from drivers.queue_registry import SCANNERS, build_dispenser_drivers
from drivers.scanner import Scanner
from drivers.scanner_serial import SerialScanner
from drivers.scanner_sim import SimScanner
from entrada.errors import DriverError


@pytest.fixture
def scanner() -> SimScanner:
    return SimScanner()


def test_is_a_scanner() -> None:
    assert isinstance(SimScanner(), Scanner)


def test_a_scan_is_delivered_normalised_and_recorded(scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)

    scanner.scan(" abc123 ")

    assert got == scanner.scans == ["ABC123"]


def test_junk_is_a_value_error_and_nothing_is_delivered(scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)

    with pytest.raises(ValueError):
        scanner.scan("12 34")

    assert got == scanner.scans == []


def test_a_double_read_delivers_the_code_twice(scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)
    scanner.double_read = True

    scanner.scan("123456")

    assert got == ["123456", "123456"]


def test_an_offline_scanner_drops_scans(scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)
    scanner.offline = True

    scanner.scan("123456")

    assert (got, scanner.dropped) == ([], ["123456"])


def test_scans_need_a_started_scanner(scanner: SimScanner) -> None:
    with pytest.raises(DriverError, match="not started"):
        scanner.scan("123456")
    scanner.start(lambda _code: None)
    scanner.stop()
    with pytest.raises(DriverError, match="not started"):
        scanner.scan("123456")


def test_start_twice_and_after_close_are_driver_errors(scanner: SimScanner) -> None:
    scanner.start(lambda _code: None)
    with pytest.raises(DriverError, match="already started"):
        scanner.start(lambda _code: None)
    scanner.close()
    scanner.close()
    with pytest.raises(DriverError, match="closed"):
        scanner.start(lambda _code: None)


# ------------------------------------------------------------------ simulator channel


def dispatch(channel: SimChannel, **req: object) -> dict[str, object]:
    return channel.dispatch(json.dumps(req).encode())


def test_the_scan_verb_scans(tmp_path: Path, scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)
    channel = SimChannel(tmp_path, "disp-1", {"scanner": scanner})

    assert dispatch(channel, verb="scan", code="abc123") == {"ok": True}
    assert got == ["ABC123"]


@pytest.mark.parametrize(
    ("req", "error"),
    [
        ({"verb": "scan"}, "code must be a string"),
        ({"verb": "scan", "code": 123456}, "code must be a string"),
        ({"verb": "scan", "code": "12 34"}, "blanks"),
    ],
)
def test_the_scan_verb_answers_bad_input(tmp_path: Path, scanner: SimScanner, req, error) -> None:
    scanner.start(lambda _code: None)
    channel = SimChannel(tmp_path, "disp-1", {"scanner": scanner})

    reply = channel.dispatch(json.dumps(req).encode())

    assert reply["ok"] is False and error in str(reply["error"])


def test_a_device_without_a_simulated_scanner_says_so(tmp_path: Path) -> None:
    channel = SimChannel(tmp_path, "disp-1", {})

    assert dispatch(channel, verb="scan", code="123456") == {
        "ok": False,
        "error": "this device has no simulated scanner",
    }


def test_the_client_scans_over_the_socket(tmp_path: Path, scanner: SimScanner) -> None:
    got: list[str] = []
    scanner.start(got.append)
    channel = SimChannel(tmp_path, "disp-1", {"scanner": scanner})
    channel.start()
    client = SimClient(tmp_path, "disp-1")
    try:
        assert client.scan("654321") == {"ok": True}
    finally:
        client.close()
        channel.stop()

    assert got == ["654321"]


# ------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    ("choice", "kind"), [("sim", SimScanner), ("serial", SerialScanner), ("none", type(None))]
)
def test_the_config_chooses_the_scanner(choice: str, kind: type) -> None:
    cfg = DriversSection.model_validate(
        {"scanner": choice, "scanner_serial": {"port": "socket://127.0.0.1:9", "baudrate": 19200}}
    )

    scanner = SCANNERS[cfg.scanner](cfg)

    assert isinstance(scanner, kind)
    if isinstance(scanner, SerialScanner):
        assert (scanner.cfg.port, scanner.cfg.baudrate) == ("socket://127.0.0.1:9", 19200)


def test_a_dispensers_drivers_include_its_scanner() -> None:
    cfg = DriversSection.model_validate({"printer": "sim", "scanner": "sim"})

    drivers = build_dispenser_drivers(cfg)
    drivers.close()

    assert isinstance(drivers.scanner, SimScanner) and drivers.scanner.closed


def test_no_scanner_unless_configured() -> None:
    drivers = build_dispenser_drivers(DriversSection.model_validate({"printer": "sim"}))
    drivers.close()

    assert drivers.scanner is None
