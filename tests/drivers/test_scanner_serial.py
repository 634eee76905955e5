"""SerialScanner and its line reading: ptys and TCP stand in for the serial line."""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_rig import WAIT, PortServer, chunked, free_port, pty_pair, quick_drivers

from controller.settings import SerialScannerSection
from drivers.scanner import MAX_CODE, Scanner, normalise_code
from drivers.scanner_serial import MAX_LINE, LineProtocol, SerialScanner
from entrada.errors import DriverError
from entrada.site import wait_until


def decode(*chunks: bytes) -> tuple[list[str], list[str]]:
    """Feed ``chunks`` to a LineProtocol; return (codes, junk reasons)."""
    codes: list[str] = []
    junk: list[str] = []
    protocol = LineProtocol(codes.append, lambda reason, _sample: junk.append(reason))
    for chunk in chunks:
        protocol.data_received(chunk)
    return codes, junk


# ------------------------------------------------------------------ codes and lines


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("123456", "123456"),
        ("  abc123\t", "ABC123"),
        ("https://q.example/c/9", "HTTPS://Q.EXAMPLE/C/9"),
    ],
)
def test_normalise_code_strips_and_upper_cases(text: str, code: str) -> None:
    assert normalise_code(text) == code


@pytest.mark.parametrize("text", ["", "   ", "12 34", "12\x0734", "ÄBC", "7" * (MAX_CODE + 1)])
def test_normalise_code_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_code(text)


@pytest.mark.parametrize("end", [b"\r", b"\n", b"\r\n"])
def test_each_line_end_gives_one_code_per_line(end: bytes) -> None:
    codes, junk = decode(b"123456" + end + b"abc123" + end)

    assert (codes, junk) == (["123456", "ABC123"], [])


def test_a_line_written_byte_by_byte_is_read_once_ended() -> None:
    data = b"0042AB\r\n"
    codes, _ = decode(*chunked(data, 1))

    assert codes == ["0042AB"]
    assert decode(b"0042AB") == ([], [])  # not ended: not yet a scan


def test_junk_lines_are_dropped_and_the_next_good_one_read() -> None:
    codes, junk = decode(
        b"\x00\x01\x02\r",  # control bytes
        b"12\xff\xfe34\r",  # not ASCII
        b"12 34\r",  # a blank inside
        b"\r\n\r\n",  # blank lines are no scans and no junk
        b"654321\r",
    )

    assert codes == ["654321"]
    assert len(junk) == 3


def test_the_tail_of_an_over_long_line_is_no_code() -> None:
    codes, junk = decode(b"9" * (MAX_LINE + 1), b"123456\r", b"777777\r")

    assert codes == ["777777"]
    assert junk == [f"a line over {MAX_LINE} bytes"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=9))
def test_arbitrary_bytes_never_crash_and_give_only_normal_codes(data: bytes, chunk: int) -> None:
    codes, _ = decode(*chunked(data, chunk))

    for code in codes:
        assert normalise_code(code) == code
        assert code.encode("ascii").lower() in data.lower()


# ------------------------------------------------------------------ scanner on a pty


class Sink:
    def __init__(self) -> None:
        self.codes: queue.Queue[str] = queue.Queue()

    def on_code(self, code: str) -> None:
        self.codes.put(code)


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """(master fd, slave tty name); the test writes to the master as the scanner would."""
    with pty_pair() as pair:
        yield pair


@pytest.fixture
def make_scanner() -> Iterator[Callable[[str], SerialScanner]]:
    def make(port: str) -> SerialScanner:
        return SerialScanner(SerialScannerSection(port=port))

    with quick_drivers(make, SerialScanner.close) as quick:
        yield quick


def test_is_a_scanner() -> None:
    assert isinstance(SerialScanner(SerialScannerSection()), Scanner)


def test_scanned_lines_become_codes_and_junk_is_counted(make_scanner, pty) -> None:
    master, name = pty
    sink = Sink()
    scanner = make_scanner(name)
    scanner.start(sink.on_code)

    os.write(master, b"\x1b[junk\r123456\r\nabc-9\r")

    assert sink.codes.get(timeout=WAIT) == "123456"
    assert sink.codes.get(timeout=WAIT) == "ABC-9"
    assert (scanner.lines_ok, scanner.lines_rejected) == (2, 1)
    assert scanner.connected


def test_a_flood_of_junk_gives_one_warning(make_scanner, pty, caplog) -> None:
    master, name = pty
    sink = Sink()
    scanner = make_scanner(name)
    scanner.start(sink.on_code)

    os.write(master, b"\x07\x07\r" * 50 + b"123456\r")

    assert sink.codes.get(timeout=WAIT) == "123456"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert scanner.lines_rejected == 50


def test_a_failing_code_callback_does_not_lose_the_port(make_scanner, pty, caplog) -> None:
    master, name = pty
    sink = Sink()
    calls: list[str] = []

    def on_code(code: str) -> None:
        calls.append(code)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")
        sink.on_code(code)

    scanner = make_scanner(name)
    scanner.start(on_code)
    os.write(master, b"111111\r222222\r")

    assert sink.codes.get(timeout=WAIT) == "222222"
    assert scanner.connected
    assert "the code callback failed" in caplog.text


def test_closing_the_pty_master_is_an_unplugged_scanner(make_scanner, pty, caplog) -> None:
    master, name = pty
    scanner = make_scanner(name)
    scanner.start(Sink().on_code)

    os.close(master)  # what unplugging a USB scanner looks like

    assert wait_until(lambda: not scanner.connected, WAIT)
    assert wait_until(lambda: "went away" in caplog.text, WAIT)
    scanner.stop()
    scanner.stop()


def test_start_twice_and_start_after_close_are_driver_errors(make_scanner, pty) -> None:
    _master, name = pty
    scanner = make_scanner(name)
    scanner.start(Sink().on_code)
    with pytest.raises(DriverError, match="already started"):
        scanner.start(Sink().on_code)
    scanner.close()
    with pytest.raises(DriverError, match="closed"):
        scanner.start(Sink().on_code)


def test_stop_and_close_before_start_are_harmless() -> None:
    scanner = SerialScanner(SerialScannerSection())
    scanner.stop()
    scanner.close()
    scanner.close()


# ------------------------------------------------------------------ reconnecting over TCP


def test_the_scanner_comes_back_when_the_port_does(make_scanner, caplog) -> None:
    caplog.set_level(logging.INFO, logger="drivers.scanner_serial")
    sink = Sink()
    server = PortServer()
    scanner = make_scanner(f"socket://127.0.0.1:{server.port}")
    scanner.start(sink.on_code)
    server.accept().sendall(b"123456\r")
    first = sink.codes.get(timeout=WAIT)

    server.close()  # unplugged
    assert wait_until(lambda: not scanner.connected, WAIT)
    server = PortServer(server.port)  # plugged in again
    server.accept().sendall(b"654321\r")
    second = sink.codes.get(timeout=WAIT)
    server.close()

    assert (first, second) == ("123456", "654321")
    assert scanner.reconnects == 1
    assert "went away" in caplog.text and "is back" in caplog.text


def test_a_port_missing_at_start_is_waited_for(make_scanner, caplog) -> None:
    port = free_port()
    sink = Sink()
    scanner = make_scanner(f"socket://127.0.0.1:{port}")

    scanner.start(sink.on_code)  # nothing listens yet: no error, it waits

    assert not scanner.connected
    assert "cannot open the port" in caplog.text
    server = PortServer(port)
    server.accept().sendall(b"123456\r")
    assert sink.codes.get(timeout=WAIT) == "123456"
    assert scanner.reconnects == 1
    server.close()
