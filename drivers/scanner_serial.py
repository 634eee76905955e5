"""Barcode/QR scanners on a serial port: one line per scan.

Most scanners can be set to a serial mode (RS-232, or USB CDC-ACM: ``/dev/ttyACM0``) in
which every code read is sent as one line of ASCII, ended by CR, LF or CR LF (which one is
a scanner setting: all three are accepted). pyserial's ``serial.threaded.LineReader``
does the reading (:class:`LineProtocol`); each line is normalised
(:func:`drivers.scanner.normalise_code`: stripped, upper case) and handed to the callback.
A line that cannot be a code (control or non-ASCII bytes, blanks inside, over-long: noise
at power-up, a scanner left in another mode) is junk: dropped and counted
(``lines_ok``, ``lines_rejected``), with at most one warning per ``warn_interval``.

Threads: pyserial's ``ReaderThread`` reads the port and calls the callback, which only
enqueues. A supervising thread waits for the port to be lost (scanner unplugged, pty
master closed), logs it once, reopens it with backoff and logs once when it is back. A
port that is not there at :meth:`SerialScanner.start` is waited for the same way: the
scanner is an extra of a dispenser (tickets are issued without it), and a USB scanner may
show up after the daemon. ``cfg.port`` may be a device or any pyserial URL
(``socket://host:port``, ``loop://``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import serial
from serial.threaded import LineReader, ReaderThread

from controller.settings import SerialScannerSection
from drivers.scanner import MAX_CODE, CodeCallback, normalise_code
from entrada.errors import DriverError
from entrada.logutil import ThrottledLog

logger = logging.getLogger(__name__)

#: Longest line kept while waiting for its end; the rest of a longer one is dropped.
MAX_LINE = 4 * MAX_CODE
_ENDS = (b"\r", b"\n")


def _ignore(*_args: object) -> None:
    return None


class LineProtocol(LineReader):
    """Lines ended by CR, LF or CR LF, bounded in length; only calls the callbacks."""

    ENCODING = "ascii"
    UNICODE_HANDLING = "replace"  # a non-ASCII byte becomes U+FFFD: junk, not a crash

    def __init__(
        self,
        on_code: Callable[[str], None],
        on_junk: Callable[[str, str], None] = _ignore,
        on_lost: Callable[[BaseException | None], None] = _ignore,
    ) -> None:
        super().__init__()
        self.on_code = on_code
        self.on_junk = on_junk
        self.on_lost = on_lost
        self._overlong = False  # dropping the rest of an over-long line

    def data_received(self, data: bytes) -> None:
        # Packetizer's loop, with two line ends and a bound: the tail of an over-long line
        # must not pass for a code of its own.
        self.buffer.extend(data)
        while True:
            cut = min((i for i in map(self.buffer.find, _ENDS) if i >= 0), default=-1)
            if cut < 0:
                break
            line = bytes(self.buffer[:cut])
            del self.buffer[: cut + 1]
            if self._overlong:
                self._overlong = False
                continue
            if line.strip():  # the LF of a CR LF, blank lines: nothing was scanned
                self.handle_packet(line)
        if len(self.buffer) > MAX_LINE:
            self.on_junk(f"a line over {MAX_LINE} bytes", bytes(self.buffer[:32]).hex())
            del self.buffer[:]
            self._overlong = True

    def handle_line(self, line: str) -> None:
        try:
            code = normalise_code(line)
        except ValueError as err:
            self.on_junk(str(err), repr(line[:32]))
            return
        self.on_code(code)

    def connection_lost(self, exc: BaseException | None) -> None:
        # Not Packetizer's: its base re-raises ``exc`` inside the reader thread.
        self.transport = None
        del self.buffer[:]
        self._overlong = False
        self.on_lost(exc)


class _ReaderThread(ReaderThread):
    """ReaderThread that also reports errors its loop lets escape (``in_waiting``'s ioctl
    raises a bare OSError when the device goes away)."""

    protocol: LineProtocol | None

    def run(self) -> None:
        try:
            super().run()
        except OSError as err:
            self.alive = False
            protocol, self.protocol = self.protocol, None
            if protocol is not None:
                protocol.connection_lost(err)


class SerialScanner:
    """Scanner on a serial port; see the module docstring."""

    retry_initial = 0.5
    retry_max = 10.0
    warn_interval = 60.0
    read_timeout = 0.5
    stop_timeout = 3.0

    def __init__(self, cfg: SerialScannerSection, name: str = "serial") -> None:
        self.name = name
        self.cfg = cfg
        self.lines_ok = 0
        self.lines_rejected = 0
        #: Times the port was opened again after it was lost (or missing at start).
        self.reconnects = 0
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._lost_reason = ""
        self._connected = False
        self._closed = False
        self._reader: _ReaderThread | None = None
        self._supervisor: threading.Thread | None = None
        self._on_code: CodeCallback | None = None
        self._junk = ThrottledLog(logger, self.warn_interval)

    @property
    def where(self) -> str:
        return f"scanner on {self.cfg.port}"

    @property
    def connected(self) -> bool:
        """The port is open and being read."""
        return self._connected

    def start(self, on_code: CodeCallback) -> None:
        if self._closed:
            raise DriverError(f"{self.where} is closed")
        if self._supervisor is not None:
            raise DriverError(f"{self.where} is already started")
        self._on_code = on_code
        self._junk.interval = self.warn_interval
        self._stop.clear()
        self._lost.clear()
        try:
            self._connect()
        except DriverError as err:
            logger.warning("%s; waiting for it", err)
            self._lost_reason = str(err)
            self._lost.set()
        else:
            logger.info("%s ready at %d baud", self.where, self.cfg.baudrate)
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"scanner-{self.name}-supervisor", daemon=True
        )
        self._supervisor.start()

    def stop(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        self._stop.set()
        self._lost.set()  # wake the supervisor
        supervisor.join(self.stop_timeout)
        self._drop_port()
        self._on_code = None

    def close(self) -> None:
        self.stop()
        self._closed = True

    # -- port ----------------------------------------------------------------------------

    def _connect(self, again: bool = False) -> None:
        """Open the port and start reading it (``again``: after it was lost or missing)."""
        try:
            port = serial.serial_for_url(
                self.cfg.port, baudrate=self.cfg.baudrate, timeout=self.read_timeout
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise DriverError(f"{self.where}: cannot open the port: {err}") from err
        if again:  # before the first line can arrive
            self.reconnects += 1
            logger.info("%s is back", self.where)
        protocol = LineProtocol(self._code, self._reject, self._connection_lost)
        reader = _ReaderThread(port, lambda: protocol)
        reader.name = f"scanner-{self.name}"
        self._reader = reader
        self._connected = True
        reader.start()

    def _drop_port(self) -> None:
        self._connected = False
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(OSError):
                reader.close()  # stops and joins the thread, then closes the port

    def _connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        if self._stop.is_set():
            return
        self._lost_reason = str(exc) if exc else "the port was closed"
        self._lost.set()

    def _supervise(self) -> None:
        while True:
            self._lost.wait()
            if self._stop.is_set():
                return
            self._lost.clear()
            was_open = self._reader is not None
            self._drop_port()
            if was_open:
                logger.warning("%s went away: %s (reopening)", self.where, self._lost_reason)
            retry = self.retry_initial
            while not self._stop.wait(retry):
                try:
                    self._connect(again=True)
                except DriverError as err:
                    logger.debug("%s", err)
                    retry = min(retry * 2, self.retry_max)
                    continue
                break

    # -- lines (reader thread) -----------------------------------------------------------

    def _code(self, code: str) -> None:
        self.lines_ok += 1
        on_code = self._on_code
        if on_code is None:
            return
        try:
            on_code(code)
        except Exception:  # it would otherwise end ReaderThread's loop as a lost port
            logger.exception("%s: the code callback failed", self.where)

    def _reject(self, reason: str, sample: str) -> None:
        self.lines_rejected += 1
        self._junk.warning(
            "junk",
            "%s: dropped a line that is no code (%s: %s); %d dropped so far",
            self.where,
            reason,
            sample,
            self.lines_rejected,
        )
