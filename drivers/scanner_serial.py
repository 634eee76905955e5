"""Barcode/QR scanners on a serial port: one line per scan.

Most scanners can be set to a serial mode (RS-232, or USB CDC-ACM: ``/dev/ttyACM0``) in
which every code read is sent as one line of ASCII, ended by CR, LF or CR LF (which one is
a scanner setting: all three are accepted). pyserial's ``serial.threaded.LineReader``
does the reading (:class:`LineProtocol`); each line is normalised
(:func:`drivers.scanner.normalise_code`: stripped, upper case) and handed to the callback.
A line that cannot be a code (control or non-ASCII bytes, blanks inside, over-long: noise
at power-up, a scanner left in another mode) is junk: dropped and counted
(``lines_ok``, ``lines_rejected``), with at most one warning per ``warn_interval``.

Threads (:class:`drivers.serial_link.SerialLink`): pyserial's ``ReaderThread`` reads the
port and calls the callback, which only enqueues. A supervising thread waits for the port
to be lost (scanner unplugged, pty master closed), logs it once, reopens it with backoff
and logs once when it is back. A port that is not there at :meth:`SerialScanner.start` is
waited for the same way: the scanner is an extra of a dispenser (tickets are issued
without it), and a USB scanner may show up after the daemon. ``cfg.port`` may be a device
or any pyserial URL (``socket://host:port``, ``loop://``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from serial.threaded import LineReader

from controller.settings import SerialScannerSection
from drivers.scanner import MAX_CODE, CodeCallback, normalise_code
from drivers.serial_link import LostCallback, SerialLink, ignore
from entrada.errors import DriverError
from entrada.logutil import ThrottledLog

logger = logging.getLogger(__name__)

#: Longest line kept while waiting for its end; the rest of a longer one is dropped.
MAX_LINE = 4 * MAX_CODE
_ENDS = (b"\r", b"\n")


class LineProtocol(LineReader):
    """Lines ended by CR, LF or CR LF, bounded in length; only calls the callbacks."""

    ENCODING = "ascii"
    UNICODE_HANDLING = "replace"  # a non-ASCII byte becomes U+FFFD: junk, not a crash

    def __init__(
        self,
        on_code: Callable[[str], None],
        on_junk: Callable[[str, str], None] = ignore,
        on_lost: Callable[[BaseException | None], None] = ignore,
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


class SerialScanner(SerialLink):
    """Scanner on a serial port; see the module docstring."""

    warn_interval = 60.0

    def __init__(self, cfg: SerialScannerSection, name: str = "serial") -> None:
        super().__init__(cfg, name, f"scanner-{name}", logger)
        self.lines_ok = 0
        self.lines_rejected = 0
        #: Times the port was opened again after it was lost (or missing at start).
        self.reconnects = 0
        self._closed = False
        self._on_code: CodeCallback | None = None
        self._junk = ThrottledLog(logger, self.warn_interval)

    @property
    def where(self) -> str:
        return f"scanner on {self.cfg.port}"

    def start(self, on_code: CodeCallback) -> None:
        if self._closed:
            raise DriverError(f"{self.where} is closed")
        self._not_started()
        self._on_code = on_code
        self._junk.interval = self.warn_interval
        self._open(wait=True)

    def stop(self) -> None:
        super().stop()
        self._on_code = None

    def close(self) -> None:
        self.stop()
        self._closed = True

    # -- port (supervisor thread) --------------------------------------------------------

    def _protocol(self, on_lost: LostCallback) -> LineProtocol:
        return LineProtocol(self._code, self._reject, on_lost)

    def _came_back(self) -> None:
        self.reconnects += 1

    # -- lines (reader thread) -----------------------------------------------------------

    def _code(self, code: str) -> None:
        self.lines_ok += 1
        self._deliver(self._on_code, code, "code")

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
