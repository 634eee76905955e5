"""A serial port that is read on its own thread and reopened when it goes away.

The serial drivers (``drivers/rfid_serial.py``, ``drivers/scanner_serial.py``) differ only
in their framing and in what they tell their consumer; the port is handled the same way,
here, in :class:`SerialLink`, which they subclass.

Threads: pyserial's ``serial.threaded.ReaderThread`` reads the port and hands bytes to the
driver's protocol (its framing), which only calls the driver's callbacks. A supervising
thread waits for the port to be lost (USB adapter unplugged, pty master closed), logs it
once, reopens it with backoff and logs once when it is back; the driver hears of both
through :meth:`SerialLink._went_away` and :meth:`SerialLink._came_back`. ``cfg.port`` may
be a device or any pyserial URL (``socket://host:port``, ``loop://``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import serial
from serial.threaded import Protocol as SerialProtocol
from serial.threaded import ReaderThread

from entrada.errors import DriverError

#: What a protocol calls when its port is lost: the error, or None if it was closed.
LostCallback = Callable[[BaseException | None], None]


class SerialPortSettings(Protocol):
    """The part of a serial driver's config section the link reads."""

    @property
    def port(self) -> str: ...

    @property
    def baudrate(self) -> int: ...


def ignore(*_args: object) -> None:
    """The callback a protocol is given when nobody listens."""
    return None


class _ReaderThread(ReaderThread):
    """ReaderThread that also reports errors its loop lets escape (``in_waiting``'s ioctl
    raises a bare OSError when the device goes away)."""

    protocol: SerialProtocol | None

    def run(self) -> None:
        try:
            super().run()
        except OSError as err:
            self.alive = False
            protocol, self.protocol = self.protocol, None
            if protocol is not None:
                protocol.connection_lost(err)


class SerialLink:
    """The port of a serial driver: opened, read and reopened; see the module docstring.

    A subclass gives :attr:`where` and :meth:`_protocol` (its framing) and may hear of the
    port going and coming back; it calls :meth:`_open` from its ``start``.
    """

    retry_initial = 0.5
    retry_max = 10.0
    read_timeout = 0.5
    stop_timeout = 3.0

    def __init__(
        self, cfg: SerialPortSettings, name: str, thread: str, logger: logging.Logger
    ) -> None:
        self.name = name
        self.cfg = cfg
        self._thread = thread  # the reader thread's name; the supervisor's adds a suffix
        self._logger = logger  # the driver's, so its lines keep the driver's logger name
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._lost_reason = ""
        self._connected = False
        self._reader: _ReaderThread | None = None
        self._supervisor: threading.Thread | None = None

    @property
    def where(self) -> str:
        """The device and its port, for log lines and errors."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """The port is open and being read."""
        return self._connected

    def stop(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        self._stop.set()
        self._lost.set()  # wake the supervisor
        supervisor.join(self.stop_timeout)
        self._drop_port()

    # -- for the driver ------------------------------------------------------------------

    def _protocol(self, on_lost: LostCallback) -> SerialProtocol:
        """A fresh protocol for a newly opened port; it must call ``on_lost`` when lost."""
        raise NotImplementedError

    def _went_away(self, reason: str) -> None:
        """The port that was open is lost (supervisor thread, logged already)."""

    def _came_back(self) -> None:
        """The port is open again, or at last (supervisor thread, logged already, before
        the first byte can arrive)."""

    def _not_started(self) -> None:
        if self._supervisor is not None:
            raise DriverError(f"{self.where} is already started")

    def _open(self, *, wait: bool = False) -> None:
        """Open the port and watch it. A port that cannot be opened is a DriverError, or,
        with ``wait``, waited for as if it had been lost."""
        self._stop.clear()
        self._lost.clear()
        try:
            self._connect()
        except DriverError as err:
            if not wait:
                raise
            self._logger.warning("%s; waiting for it", err)
            self._lost_reason = str(err)
            self._lost.set()
        else:
            self._logger.info("%s ready at %d baud", self.where, self.cfg.baudrate)
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"{self._thread}-supervisor", daemon=True
        )
        self._supervisor.start()

    def _deliver(self, callback: Callable[[str], None] | None, value: str, what: str) -> None:
        """Hand ``value`` to the consumer's callback (reader thread); a bug there is logged."""
        if callback is None:
            return
        try:
            callback(value)
        except Exception:  # it would otherwise end ReaderThread's loop as a lost port
            self._logger.exception("%s: the %s callback failed", self.where, what)

    # -- port ----------------------------------------------------------------------------

    def _connect(self, again: bool = False) -> None:
        """Open the port and start reading it (``again``: after it was lost or missing)."""
        try:
            port = serial.serial_for_url(
                self.cfg.port, baudrate=self.cfg.baudrate, timeout=self.read_timeout
            )
        except (serial.SerialException, OSError, ValueError) as err:
            raise DriverError(f"{self.where}: cannot open the port: {err}") from err
        if again:  # before the first byte can arrive
            self._logger.info("%s is back", self.where)
            self._came_back()
        protocol = self._protocol(self._connection_lost)
        reader = _ReaderThread(port, lambda: protocol)
        reader.name = self._thread
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
                self._logger.warning("%s went away: %s (reopening)", self.where, self._lost_reason)
                self._went_away(self._lost_reason)
            retry = self.retry_initial
            while not self._stop.wait(retry):
                try:
                    self._connect(again=True)
                except DriverError as err:
                    self._logger.debug("%s", err)
                    retry = min(retry * 2, self.retry_max)
                    continue
                break
