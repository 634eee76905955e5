"""SerialRfidReader and its framing: ptys and TCP stand in for the serial line."""

from __future__ import annotations

import logging
import os
import queue
import re
from collections.abc import Callable, Iterator
from functools import reduce
from operator import xor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from serial_rig import WAIT, PortServer, chunked, pty_pair, quick_drivers

from controller.settings import SerialReaderSection
from drivers.rfid import RfidReader
from drivers.rfid_serial import FrameProtocol, SerialRfidReader, parse_frame
from entrada.errors import DriverError


def frame(digits: str, *, checksum: int | None = None, tail: bytes = b"") -> bytes:
    """A reader frame for 10 hex digits; the right checksum unless one is given."""
    if checksum is None:
        checksum = reduce(xor, bytes.fromhex(digits))
    return b"\x02" + f"{digits}{checksum:02X}".encode() + tail + b"\x03"


def decode(*chunks: bytes) -> tuple[list[str], list[str]]:
    """Feed ``chunks`` to a FrameProtocol; return (UIDs, reject reasons)."""
    uids: list[str] = []
    rejects: list[str] = []
    protocol = FrameProtocol(uids.append, lambda reason, _: rejects.append(reason))
    for chunk in chunks:
        protocol.data_received(chunk)
    return uids, rejects


class Sink:
    def __init__(self) -> None:
        self.uids: queue.Queue[str] = queue.Queue()
        self.health: queue.Queue[tuple[bool, str]] = queue.Queue()

    def on_uid(self, uid: str) -> None:
        self.uids.put(uid)

    def on_health(self, ok: bool, reason: str) -> None:
        self.health.put((ok, reason))


# ------------------------------------------------------------------ framing


@pytest.mark.parametrize(
    ("body", "uid"),
    [
        (b"012345678989", "0123456789"),
        (b"0a0b0c0d0e0e", "0A0B0C0D0E"),
        (b"0A0B0C0D0E0E\r\n", "0A0B0C0D0E"),
        (b"0A0B0C0D0E0E\r", "0A0B0C0D0E"),
    ],
)
def test_parse_frame_accepts(body: bytes, uid: str) -> None:
    assert parse_frame(body) == uid


@pytest.mark.parametrize(
    "body",
    [b"012345678988", b"0123456789", b"01234567898900", b"01234G678989", b"01 2345678989", b""],
)
def test_parse_frame_refuses(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_frame(body)


def test_garbage_between_frames_is_skipped() -> None:
    uids, rejects = decode(
        b"\xff\x00junk" + frame("0123456789") + b"\x03\r\n??" + frame("AABBCCDDEE")
    )

    assert uids == ["0123456789", "AABBCCDDEE"]
    assert rejects == []


def test_a_frame_written_byte_by_byte_is_read() -> None:
    data = frame("0123456789", tail=b"\r\n")

    uids, _ = decode(*chunked(data, 1))

    assert uids == ["0123456789"]


def test_bad_frames_are_rejected_and_the_next_good_one_read() -> None:
    uids, rejects = decode(
        frame("0123456789", checksum=0x00),
        b"\x02012345",  # cut short by the next STX
        b"\x02" + b"7" * 40,  # over-long, no ETX
        frame("0123456789"),
    )

    assert uids == ["0123456789"]
    assert [r.split()[0] for r in rejects] == ["checksum", "frame", "over-long"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_or_invent_a_uid(data: bytes) -> None:
    uids, _ = decode(data)

    for uid in uids:
        good = re.escape(frame(uid)[:-1]) + rb"[\r\n]*\x03"
        assert re.search(good, data, re.IGNORECASE), uid


_digits = st.text("0123456789ABCDEF", min_size=10, max_size=10)


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.binary(max_size=40), _digits), max_size=5),
    st.integers(min_value=1, max_value=7),
)
def test_every_valid_frame_survives_junk_and_any_chunking(pairs, chunk: int) -> None:
    data = b"".join(junk + frame(digits) for junk, digits in pairs)

    uids, _ = decode(*chunked(data, chunk))

    expected = iter(uids)  # junk may hold frames of its own: a subsequence, in order
    assert all(any(u == digits for u in expected) for _, digits in pairs)


# ------------------------------------------------------------------ reader on a pty


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """(master fd, slave tty name); the test writes to the master as the reader would."""
    with pty_pair() as pair:
        yield pair


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def make_reader() -> Iterator[Callable[[str], SerialRfidReader]]:
    def make(port: str) -> SerialRfidReader:
        return SerialRfidReader(SerialReaderSection(port=port))

    with quick_drivers(make, SerialRfidReader.stop) as quick:
        yield quick


def test_is_an_rfid_reader() -> None:
    assert isinstance(SerialRfidReader(SerialReaderSection()), RfidReader)


def test_reads_frames_from_the_port_and_counts_them(make_reader, pty, sink) -> None:
    master, name = pty
    reader = make_reader(name)
    reader.start(sink.on_uid, sink.on_health)

    os.write(master, b"noise" + frame("0123456789", checksum=1) + frame("0a0b0c0d0e", tail=b"\r\n"))

    assert sink.uids.get(timeout=WAIT) == "0A0B0C0D0E"
    assert (reader.frames_ok, reader.frames_rejected, reader.bytes_discarded) == (1, 1, 5)


def test_a_flood_of_garbage_gives_one_warning(make_reader, pty, sink, caplog) -> None:
    master, name = pty
    reader = make_reader(name)
    reader.start(sink.on_uid, sink.on_health)

    os.write(master, b"\x55" * 500 + frame("0123456789", checksum=0) * 20 + frame("0123456789"))
    sink.uids.get(timeout=WAIT)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert reader.frames_rejected == 20


def test_closing_the_pty_master_reports_the_reader_gone_once(make_reader, pty, sink) -> None:
    master, name = pty
    reader = make_reader(name)
    reader.start(sink.on_uid, sink.on_health)

    os.close(master)  # what unplugging a USB-serial adapter looks like
    ok, reason = sink.health.get(timeout=WAIT)

    assert ok is False and reason
    with pytest.raises(queue.Empty):
        sink.health.get(timeout=0.3)  # reopening keeps failing, silently
    reader.stop()
    reader.stop()


def test_opening_a_missing_port_is_a_driver_error(sink) -> None:
    reader = SerialRfidReader(SerialReaderSection(port="/dev/ttyDOES-NOT-EXIST"))

    with pytest.raises(DriverError, match="cannot open"):
        reader.start(sink.on_uid, sink.on_health)


def test_stop_before_start_is_harmless() -> None:
    SerialRfidReader(SerialReaderSection()).stop()


def test_a_failing_uid_callback_does_not_lose_the_port(make_reader, pty, sink, caplog) -> None:
    master, name = pty
    calls: list[str] = []

    def on_uid(uid: str) -> None:
        calls.append(uid)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")
        sink.on_uid(uid)

    reader = make_reader(name)
    reader.start(on_uid, sink.on_health)
    os.write(master, frame("0123456789") + frame("AABBCCDDEE"))

    assert sink.uids.get(timeout=WAIT) == "AABBCCDDEE"
    assert sink.health.empty()
    assert "the UID callback failed" in caplog.text


# ------------------------------------------------------------------ reconnecting over TCP


def test_the_reader_comes_back_when_the_port_does(make_reader, sink) -> None:
    server = PortServer()
    reader = make_reader(f"socket://127.0.0.1:{server.port}")
    reader.start(sink.on_uid, sink.on_health)
    server.accept().sendall(frame("0123456789"))
    first = sink.uids.get(timeout=WAIT)

    server.close()
    down = sink.health.get(timeout=WAIT)
    server = PortServer(server.port)
    server.accept().sendall(frame("AABBCCDDEE"))
    up = sink.health.get(timeout=WAIT)
    second = sink.uids.get(timeout=WAIT)
    reader.stop()
    server.close()

    assert first == "0123456789" and second == "AABBCCDDEE"
    assert down[0] is False and "disconnected" in down[1]
    assert up == (True, "")
