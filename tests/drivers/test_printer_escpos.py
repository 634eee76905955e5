"""Real ESC/POS printers through escpos's own connection code: a file, a TCP "TM printer"
on 127.0.0.1 that answers DLE EOT like a real one, a pty for serial, and a fake pyusb."""

from __future__ import annotations

import array
import gc
import logging
import os
import select
import socket
import socketserver
import sys
import threading
import types
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from escpos_decode import StatusQuery, decode

from controller.settings_printer import PrinterSection
from drivers import printer_escpos
from drivers.printer import PrintError, PrinterStatus, TicketPrinter, TicketSpec
from drivers.printer_escpos import (
    EscposPrinter,
    faults_from_lp_status,
    faults_from_status,
    lp_port_status,
    status_reply,
)
from drivers.printer_sim import SimPrinter
from entrada.codes import Fault
from entrada.errors import DriverError

LABELS = {"ahead": "Ahead", "wait": "Wait", "minutes": "min", "issued": "Issued", "scan": "Scan"}
OK = PrinterStatus()
OFFLINE = PrinterStatus(frozenset({Fault.PRINTER_OFFLINE}))
LOGGER = "drivers.printer_escpos"


def spec(number: str = "C120") -> TicketSpec:
    return TicketSpec(
        site_name="Městský úřad Brno",
        service_name="Občanské průkazy",
        number=number,
        issued_at=datetime(2025, 6, 1, 8, 30, tzinfo=UTC),
        ahead=2,
        est_wait_minutes=9,
        qr_url="https://q.example.org/t/" + number,
        labels=LABELS,
    )


def sim_bytes(ticket: TicketSpec, **cfg) -> bytes:
    printer = SimPrinter(PrinterSection(**cfg))
    printer.print_ticket(ticket)
    return printer.output


# ------------------------------------------------------------ a TM printer's replies


class TmReplies:
    """Answers ``DLE EOT n`` wherever it appears in the stream, as an Epson TM does (even
    inside raster data), with the status byte set for ``n``; records every byte."""

    def __init__(self) -> None:
        self.status = {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}
        self.silent = False
        self.received = bytearray()
        self.queries: list[int] = []
        self._scan = 0
        self._changed = threading.Condition()

    def feed(self, data: bytes) -> bytes:
        with self._changed:
            self.received += data
            self._changed.notify_all()
            answers = bytearray()
            while True:
                at = self.received.find(b"\x10\x04", self._scan)
                if at < 0:
                    self._scan = max(self._scan, len(self.received) - 1)
                    return bytes(answers)
                if at + 2 >= len(self.received):
                    self._scan = at
                    return bytes(answers)
                n = self.received[at + 2]
                self._scan = at + 3
                self.queries.append(n)
                if not self.silent:
                    answers.append(self.status.get(n, 0x12))

    def wait_for(self, count: int, timeout: float = 10.0) -> bytes:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return bytes(self.received)


class _TmHandler(socketserver.BaseRequestHandler):
    server: FakeTmServer

    def handle(self) -> None:
        self.server.current = self.request
        self.server.connected.set()
        while True:
            try:
                data = self.request.recv(4096)
            except OSError:
                return
            if not data:
                return
            answer = self.server.replies.feed(data)
            if answer:
                self.request.sendall(answer)


class FakeTmServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TmHandler)
        self.replies = TmReplies()
        self.connected = threading.Event()
        self.current: socket.socket | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def hang_up(self) -> None:
        if self.current is not None:
            self.current.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tm_server() -> Iterator[FakeTmServer]:
    server = FakeTmServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def network(tm_server) -> Iterator[EscposPrinter]:
    printer = EscposPrinter(
        PrinterSection(connection="network", host="127.0.0.1", port=tm_server.port, timeout=0.3)
    )
    assert tm_server.connected.wait(5)
    yield printer
    printer.close()


# ------------------------------------------------------------------ pure mapping


@pytest.mark.parametrize(
    ("online", "paper", "cause", "faults"),
    [
        (0x12, 0x12, None, set()),
        (0x12, 0x1E, None, {Fault.PRINTER_PAPER_LOW}),
        (0x12, 0x72, None, {Fault.PRINTER_PAPER_OUT}),
        (0x12, 0x7E, None, {Fault.PRINTER_PAPER_OUT}),
        (0x1A, 0x12, 0x16, {Fault.PRINTER_COVER_OPEN}),
        (0x1A, 0x1E, 0x16, {Fault.PRINTER_COVER_OPEN, Fault.PRINTER_PAPER_LOW}),
        (0x1A, 0x12, 0x32, {Fault.PRINTER_PAPER_OUT}),
        (0x1A, 0x1E, 0x32, {Fault.PRINTER_PAPER_OUT}),
        (0x1A, 0x12, 0x52, {Fault.PRINTER_OFFLINE}),  # an error state
        (0x1A, 0x1E, 0x12, {Fault.PRINTER_OFFLINE, Fault.PRINTER_PAPER_LOW}),
        (0x16, 0x12, None, set()),  # drawer pin high: still online
    ],
)
def test_faults_from_dle_eot_replies(online, paper, cause, faults):
    assert faults_from_status(online, paper, cause) == faults


@pytest.mark.parametrize(
    ("reply", "byte"),
    [(b"", None), (b"\x12", 0x12), (b"\x00\x1a", 0x1A), (b"\xff\x01", None), (b"\x10", None)],
)
def test_status_reply_checks_the_fixed_bits(reply, byte):
    assert status_reply(reply) == byte


@pytest.mark.parametrize(
    ("port", "faults"),
    [
        (0x18, set()),  # selected, no error
        (0x38, {Fault.PRINTER_PAPER_OUT}),
        (0x30, {Fault.PRINTER_PAPER_OUT}),
        (0x08, {Fault.PRINTER_OFFLINE}),  # not selected
        (0x10, {Fault.PRINTER_OFFLINE}),  # error (an open cover shows here)
    ],
)
def test_faults_from_usblp_port_status(port, faults):
    assert faults_from_lp_status(port) == faults


def test_lp_status_of_something_that_is_not_usblp():
    with open(os.devnull, "wb") as null:
        assert lp_port_status(null.fileno()) is None


# --------------------------------------------------------------------- file


@pytest.mark.parametrize("native", [True, False])
def test_file_printer_writes_exactly_the_simulator_bytes(tmp_path, capsys, native):
    device = tmp_path / "lp0"
    device.touch()
    printer = EscposPrinter(PrinterSection(device=str(device), native_qr=native))

    printer.print_ticket(spec())
    printer.close()

    assert device.read_bytes() == sim_bytes(spec(), native_qr=native)
    assert isinstance(printer, TicketPrinter)
    assert capsys.readouterr().out == ""


def test_missing_usblp_device_is_an_error_at_once():
    with pytest.raises(DriverError, match=r"/dev/usb/lp9.*no such device"):
        EscposPrinter(PrinterSection(device="/dev/usb/lp9"))


def test_file_status_follows_the_device_node(tmp_path, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    device = tmp_path / "lp0"
    device.touch()
    printer = EscposPrinter(PrinterSection(device=str(device)))

    assert printer.status() == OK  # a plain file: nothing more can be known
    device.unlink()  # unplugged
    assert printer.status() == OFFLINE
    assert printer.status() == OFFLINE
    with pytest.raises(PrintError, match="not reachable"):
        printer.print_ticket(spec())
    device.touch()  # back
    assert printer.status() == OK
    printer.print_ticket(spec())

    assert device.read_bytes() == sim_bytes(spec())
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum(m.endswith("is back") for m in messages) == 1
    printer.close()


def test_file_status_from_usblp(tmp_path, monkeypatch):
    device = tmp_path / "lp0"
    device.touch()
    printer = EscposPrinter(PrinterSection(device=str(device)))
    monkeypatch.setattr(printer_escpos, "lp_port_status", lambda fd: 0x38)

    assert printer.status().faults == {Fault.PRINTER_PAPER_OUT}
    printer.close()


# ------------------------------------------------------------------ network


def test_network_printer_gets_the_simulator_bytes(network, tm_server):
    expected = sim_bytes(spec())

    network.print_ticket(spec())

    assert tm_server.replies.wait_for(len(expected)) == expected


def test_network_status_asks_online_and_paper(network, tm_server):
    assert network.status() == OK
    assert tm_server.replies.queries == [1, 4]


@pytest.mark.parametrize(
    ("replies", "faults", "queries"),
    [
        ({4: 0x1E}, {Fault.PRINTER_PAPER_LOW}, [1, 4]),
        ({4: 0x72}, {Fault.PRINTER_PAPER_OUT}, [1, 4]),
        ({1: 0x1A, 2: 0x16}, {Fault.PRINTER_COVER_OPEN}, [1, 4, 2]),
        ({1: 0x1A, 2: 0x12}, {Fault.PRINTER_OFFLINE}, [1, 4, 2]),
    ],
)
def test_network_status_faults(network, tm_server, replies, faults, queries):
    tm_server.replies.status.update(replies)

    assert network.status().faults == faults
    assert tm_server.replies.queries == queries


def test_a_stale_reply_is_drained_before_asking(network, tm_server):
    assert tm_server.current is not None
    tm_server.current.sendall(b"\x1a")  # a late "offline" answer to an earlier query
    assert select.select([network._printer.device], [], [], 5)[0]

    assert network.status() == OK


def test_a_silent_printer_is_offline_and_comes_back(network, tm_server, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    tm_server.replies.silent = True

    assert network.status() == OFFLINE
    assert network.status() == OFFLINE
    tm_server.replies.silent = False
    assert network.status() == OK

    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("unreachable" in m and "no answer" in m for m in messages) == 1
    assert sum(m.endswith("is back") for m in messages) == 1


def test_a_printer_that_hangs_up(network, tm_server):
    tm_server.shutdown()
    tm_server.server_close()
    tm_server.hang_up()

    assert network.status() == OFFLINE
    with pytest.raises(PrintError, match=r"not reachable.*Connection refused"):
        network.print_ticket(spec())


def test_network_printer_not_there():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused

        with pytest.raises(DriverError, match="Connection refused"):
            EscposPrinter(PrinterSection(connection="network", host="127.0.0.1", port=port))


def test_answers_left_over_from_a_print_are_drained(network, tm_server):
    # Raster data can hold the bytes 10 04 0n, and a TM answers them as queries.
    network.print_ticket(spec())
    assert tm_server.current is not None
    tm_server.current.sendall(b"\x12\x12")
    assert select.select([network._printer.device], [], [], 5)[0]
    tm_server.replies.status[1] = 0x1A  # now offline, cover open
    tm_server.replies.status[2] = 0x16

    assert network.status().faults == {Fault.PRINTER_COVER_OPEN}


# ------------------------------------------------------------------- serial


@pytest.fixture
def pty_line() -> Iterator[tuple[str, TmReplies]]:
    master, slave = os.openpty()
    replies = TmReplies()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            if not select.select([master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            answer = replies.feed(data)
            if answer:
                os.write(master, answer)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    yield os.ttyname(slave), replies
    stop.set()
    thread.join(5)
    os.close(master)
    os.close(slave)


@pytest.fixture
def serial_printer(pty_line) -> Iterator[tuple[EscposPrinter, TmReplies]]:
    path, replies = pty_line
    printer = EscposPrinter(
        PrinterSection(connection="serial", device=path, baudrate=9600, timeout=0.3)
    )
    yield printer, replies
    printer.close()


def test_serial_printer_gets_the_simulator_bytes(serial_printer):
    printer, replies = serial_printer
    expected = sim_bytes(spec())

    printer.print_ticket(spec())

    assert replies.wait_for(len(expected)) == expected


def test_serial_status(serial_printer):
    printer, replies = serial_printer

    assert printer.status() == OK
    replies.status[4] = 0x1E
    assert printer.status().faults == {Fault.PRINTER_PAPER_LOW}
    assert decode(bytes(replies.received)).of(StatusQuery) == [
        StatusQuery(1),
        StatusQuery(4),
        StatusQuery(1),
        StatusQuery(4),
    ]


def test_a_silent_serial_printer_is_offline(serial_printer):
    printer, replies = serial_printer
    replies.silent = True

    assert printer.status() == OFFLINE
    replies.silent = False
    assert printer.status() == OK


def test_missing_serial_port():
    with pytest.raises(DriverError, match="/dev/ttyNOPE"):
        EscposPrinter(PrinterSection(connection="serial", device="/dev/ttyNOPE"))


# ---------------------------------------------------------------------- usb


def test_usb_without_pyusb_says_what_to_install(monkeypatch):
    from escpos.printer import usb as escpos_usb

    monkeypatch.setattr(escpos_usb, "is_usable", lambda: False)

    with pytest.raises(DriverError, match=r"pyusb \(pip install 'python-escpos\[usb\]'\)"):
        EscposPrinter(PrinterSection(connection="usb", usb_vendor=0x04B8, usb_product=0x0E15))


class FakeUsbDevice:
    """Enough of a pyusb device for escpos's Usb printer, answering like a TM."""

    class Backend:
        pass

    def __init__(self, replies: TmReplies, timeout_error: type[Exception]) -> None:
        self.backend = self.Backend()
        self.replies = replies
        self.pending = bytearray()
        self.write_timeouts: list[int] = []
        self._timeout_error = timeout_error

    def set_configuration(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def write(self, endpoint: int, data: bytes, timeout: int | None = None) -> int:
        assert endpoint == 0x01
        self.write_timeouts.append(timeout or 0)
        self.pending += self.replies.feed(bytes(data))
        return len(data)

    def read(self, endpoint: int, size: int, timeout: int | None = None) -> array.array:
        assert endpoint == 0x82
        if not self.pending:
            raise self._timeout_error("Operation timed out")
        chunk = bytes(self.pending[:size])
        del self.pending[:size]
        return array.array("B", chunk)


@pytest.fixture
def fake_pyusb(monkeypatch) -> Iterator[types.SimpleNamespace]:
    from escpos.printer import usb as escpos_usb

    core = types.ModuleType("usb.core")

    class USBError(OSError):
        pass

    class USBTimeoutError(USBError):
        pass

    core.USBError = USBError  # type: ignore[attr-defined]
    core.USBTimeoutError = USBTimeoutError  # type: ignore[attr-defined]
    util = types.ModuleType("usb.util")
    util.dispose_resources = lambda device: None  # type: ignore[attr-defined]
    package = types.ModuleType("usb")
    package.core, package.util = core, util  # type: ignore[attr-defined]
    state = types.SimpleNamespace(device=None, finds=[])

    def find(**kwargs):
        state.finds.append(kwargs)
        return state.device

    core.find = find  # type: ignore[attr-defined]
    for name, module in (("usb", package), ("usb.core", core), ("usb.util", util)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(escpos_usb, "usb", package, raising=False)
    monkeypatch.setattr(escpos_usb, "_DEP_USB", True)
    state.replies = TmReplies()
    state.make_device = lambda: FakeUsbDevice(state.replies, USBTimeoutError)
    yield state
    # escpos's Usb.__del__ closes through pyusb: let it run while the fake is in place.
    state.device = None
    gc.collect()


USB_CFG = {"connection": "usb", "usb_vendor": 0x04B8, "usb_product": 0x0E15, "timeout": 0.5}


def test_usb_printer_not_plugged_in(fake_pyusb):
    with pytest.raises(DriverError, match="not found"):
        EscposPrinter(PrinterSection(**USB_CFG))

    assert fake_pyusb.finds == [{"idVendor": 0x04B8, "idProduct": 0x0E15}]


def test_usb_printer_prints_and_answers_status(fake_pyusb):
    device = fake_pyusb.device = fake_pyusb.make_device()
    printer = EscposPrinter(PrinterSection(**USB_CFG))

    printer.print_ticket(spec())
    assert fake_pyusb.replies.wait_for(0) == sim_bytes(spec())
    assert set(device.write_timeouts) == {int(printer_escpos.PRINT_TIMEOUT * 1000)}
    device.pending += b"\x1a"  # stale, drained
    fake_pyusb.replies.status[4] = 0x72

    assert printer.status().faults == {Fault.PRINTER_PAPER_OUT}
    assert device.write_timeouts[-1] == 500  # status queries get the short timeout
    printer.close()
