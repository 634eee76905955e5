"""Real ESC/POS ticket printers through python-escpos: USB, usblp file, serial, network.

The connection is opened in the constructor: a missing device raises DriverError at once
(never a silent fallback). Later losses are handled in place: a failed print or status
query closes the connection, :meth:`EscposPrinter.status` reports ``PRINTER_OFFLINE`` and
tries to reopen it on the next call, and one log line says when the printer goes away and
one when it is back, never one per call.

Status, per connection:

- ``serial``, ``network``, ``usb`` can read back, so :meth:`~EscposPrinter.status` asks the
  printer with escpos's real-time queries (``query_status``): ``DLE EOT 1`` (online),
  ``DLE EOT 4`` (paper roll sensor) and, when offline, ``DLE EOT 2`` (why: cover open,
  paper end). escpos's own ``paper_status()`` is not used because it reads a missing
  reply as "paper adequate"; replies are checked against the fixed bits of the answer
  (``0xx1 0x10``) and a silent printer is ``PRINTER_OFFLINE``. Any stale reply waiting in
  the input (a late answer, or a printer that took a ``DLE EOT`` inside raster data as a
  query) is drained before asking. Each query waits at most ``timeout``; the first
  silence ends the check, so a dead printer costs one ``timeout``. On serial the reply
  is read as one byte: escpos asks pyserial for 16, which then waits out the whole
  timeout for every answer.
- ``file`` (the kernel's usblp, ``/dev/usb/lp0``) is written through escpos's write-only
  ``File``. What can be known: the device node vanishes when the printer is unplugged or
  off (``PRINTER_OFFLINE``), and usblp's ``LPGETSTATUS`` ioctl gives the USB printer
  class port status: paper empty (``PRINTER_PAPER_OUT``), not selected or error
  (``PRINTER_OFFLINE``; an open cover shows here too). Paper low cannot be seen. On a
  plain file (tests) nothing more is known than that it can be written.

Opening: a ``file`` device must exist (escpos opens it with ``"wb"``, which as root
would create a plain file in ``/dev/usb`` where the printer's node belongs), and a
``network`` socket is connected here and handed to escpos (its ``Network.open()`` leaves
the socket of a failed connect unclosed, once per retry).

Writes: ``network`` and ``serial`` writes are bounded by ``print_timeout`` and ``usb``
writes by the same limit; a ``file`` write blocks in the kernel until usblp takes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct
import threading
from typing import Any

from controller.settings_printer import PrinterSection
from drivers.printer import PrintError, PrinterStatus, TicketSpec
from drivers.ticket_escpos import TicketRenderer, load_escpos, make_printer, root_logging_kept
from entrada.codes import Fault
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

#: A ticket's bytes must reach the printer within this time (serial, network, usb).
PRINT_TIMEOUT = 30.0

# Real-time status replies (DLE EOT n): bits 1 and 4 are always 1, bits 0 and 7 always 0.
REPLY_MASK, REPLY_FIXED = 0x93, 0x12
OFFLINE_BIT = 0x08  # DLE EOT 1
COVER_OPEN_BIT, PAPER_END_STOP_BIT = 0x04, 0x20  # DLE EOT 2
PAPER_NEAR_END_BITS, PAPER_END_BITS = 0x0C, 0x60  # DLE EOT 4

# usblp (linux/lp.h): LPGETSTATUS gives the USB printer class port status byte.
LPGETSTATUS = 0x060B
LP_PAPER_EMPTY, LP_SELECTED, LP_NO_ERROR = 0x20, 0x10, 0x08

OFFLINE = frozenset({Fault.PRINTER_OFFLINE})


def _escpos_errors() -> tuple[type[BaseException], ...]:
    """What a print or query can raise: OS errors (sockets, serial, pyusb's USBError are
    OSErrors), escpos's own, ValueError, RuntimeError (a missing dependency) and the
    AssertionError escpos uses for a device that is not open."""
    from escpos.exceptions import Error as EscposError

    return (OSError, EscposError, ValueError, RuntimeError, AssertionError)


def status_reply(reply: bytes) -> int | None:
    """The first byte of ``reply`` that is a real-time status answer, or None."""
    for byte in reply:
        if byte & REPLY_MASK == REPLY_FIXED:
            return byte
    return None


def faults_from_status(online: int, paper: int, offline_cause: int | None) -> frozenset[Fault]:
    """Faults from the replies to ``DLE EOT 1``, ``DLE EOT 4`` and (offline) ``DLE EOT 2``."""
    faults: set[Fault] = set()
    if paper & PAPER_END_BITS == PAPER_END_BITS:
        faults.add(Fault.PRINTER_PAPER_OUT)
    elif paper & PAPER_NEAR_END_BITS == PAPER_NEAR_END_BITS:
        faults.add(Fault.PRINTER_PAPER_LOW)
    if online & OFFLINE_BIT:
        cause = offline_cause or 0
        if cause & COVER_OPEN_BIT:
            faults.add(Fault.PRINTER_COVER_OPEN)
        if cause & PAPER_END_STOP_BIT:
            faults.discard(Fault.PRINTER_PAPER_LOW)
            faults.add(Fault.PRINTER_PAPER_OUT)
        if not faults - {Fault.PRINTER_PAPER_LOW}:
            faults.add(Fault.PRINTER_OFFLINE)  # offline for a reason we cannot name
    return frozenset(faults)


def faults_from_lp_status(status: int) -> frozenset[Fault]:
    """Faults from usblp's port status byte (``LPGETSTATUS``)."""
    if status & LP_PAPER_EMPTY:
        return frozenset({Fault.PRINTER_PAPER_OUT})
    if not status & LP_SELECTED or not status & LP_NO_ERROR:
        return OFFLINE
    return frozenset()


def lp_port_status(fd: int) -> int | None:
    """usblp's port status of open file ``fd``; None when ``fd`` is not a usblp device."""
    try:
        raw = fcntl.ioctl(fd, LPGETSTATUS, struct.pack("i", 0))
    except OSError as err:
        if err.errno in (errno.ENOTTY, errno.EINVAL):
            return None
        raise
    value: int = struct.unpack("i", raw)[0]
    return value


def _one_line(err: BaseException) -> str:
    """escpos messages span lines; a log line must not."""
    return " ".join(str(err).split()) or type(err).__name__


class _NoReply(OSError):
    """The printer did not answer a status query in time, or answered garbage."""


class EscposPrinter:
    """Implements :class:`drivers.printer.TicketPrinter` on a real printer."""

    def __init__(self, cfg: PrinterSection, *, name: str = "escpos") -> None:
        load_escpos(cfg.capabilities_dir)
        self.name = name
        self.cfg = cfg
        self.paper_width = cfg.paper_width_px()
        self.native_qr = cfg.use_native_qr()
        self._errors = _escpos_errors()
        self._lock = threading.Lock()
        self._closed = False
        self._connected = False
        self._away: str | None = None  # why the printer is unreachable, while it is
        self._printer = self._make()
        self._renderer = TicketRenderer(
            self._printer, paper_width=self.paper_width, native_qr=self.native_qr
        )
        try:
            self._connect()
        except DriverError:
            self._drop()
            raise
        logger.info(
            "printer %r: %s, profile %s, %d dots, %s QR",
            name,
            self.where,
            cfg.profile,
            self.paper_width,
            "native" if self.native_qr else "raster",
        )

    @property
    def where(self) -> str:
        cfg = self.cfg
        if cfg.connection == "network":
            return f"network {cfg.host}:{cfg.port}"
        if cfg.connection == "usb":
            return f"usb {cfg.usb_vendor or 0:04x}:{cfg.usb_product or 0:04x}"
        return f"{cfg.connection} {cfg.device}"

    # ------------------------------------------------------------- TicketPrinter

    def status(self) -> PrinterStatus:
        with self._lock:
            if self._closed:
                return PrinterStatus(OFFLINE)
            if not self._connected:
                try:
                    self._connect()
                except DriverError as err:
                    self._lost(str(err))
                    return PrinterStatus(OFFLINE)
            try:
                faults = self._query()
            except self._errors as err:
                self._lost(f"status query failed: {_one_line(err)}")
                self._drop()
                return PrinterStatus(OFFLINE)
            self._back()
            return PrinterStatus(faults)

    def print_ticket(self, ticket: TicketSpec) -> None:
        with self._lock:
            if self._closed:
                raise PrintError(f"printer {self.name!r} is closed")
            if not self._connected:
                try:
                    self._connect()
                except DriverError as err:
                    self._lost(str(err))
                    raise PrintError(f"not reachable: {err}") from err
            try:
                with self._write_timeout(), root_logging_kept():
                    self._renderer.render(ticket)
                    if self.cfg.connection == "file":
                        self._printer.flush()
            except self._errors as err:
                reason = f"{type(err).__name__}: {_one_line(err)}"
                self._lost(f"print failed: {reason}")
                self._drop()
                raise PrintError(f"printer {self.name!r}: {reason}") from err
            self._back()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drop()
        logger.info("printer %r closed", self.name)

    # -------------------------------------------------------------- connection

    def _make(self) -> Any:
        cfg, width = self.cfg, self.paper_width
        import escpos.printer as printers

        if cfg.connection == "usb":
            from escpos.printer import usb as usb_module

            if not usb_module.is_usable():
                raise DriverError(
                    "printer connection 'usb' needs pyusb (pip install 'python-escpos[usb]'), "
                    "or use connection 'file' with the kernel's usblp (/dev/usb/lp0)"
                )
            return make_printer(
                printers.Usb,
                cfg.profile,
                width,
                idVendor=cfg.usb_vendor,
                idProduct=cfg.usb_product,
                timeout=int(cfg.timeout * 1000),  # pyusb counts milliseconds
                in_ep=cfg.usb_in_ep,
                out_ep=cfg.usb_out_ep,
            )
        if cfg.connection == "file":
            return make_printer(printers.File, cfg.profile, width, devfile=cfg.device)
        if cfg.connection == "serial":
            return make_printer(
                printers.Serial,
                cfg.profile,
                width,
                devfile=cfg.device,
                baudrate=cfg.baudrate,
                timeout=cfg.timeout,
            )
        return make_printer(
            printers.Network, cfg.profile, width, host=cfg.host, port=cfg.port, timeout=cfg.timeout
        )

    def _connect(self) -> None:
        """Open the device; DriverError saying which one and why if it is not there."""
        if self.cfg.connection == "file" and not os.path.exists(self.cfg.device):
            # escpos opens it with "wb": as root that would create a plain file in /dev
            # where udev puts the printer's node when it comes back.
            raise DriverError(
                f"printer {self.name!r} ({self.where}): no such device (unplugged or off?)"
            )
        try:
            if self.cfg.connection == "network":
                # escpos's Network.open() drops the socket of a failed connect unclosed.
                self._printer.device = socket.create_connection(
                    (self.cfg.host, self.cfg.port), timeout=self.cfg.timeout
                )
            else:
                with root_logging_kept():
                    self._printer.open()
        except self._errors as err:
            self._printer.device = False  # escpos leaves None; next open starts afresh
            raise DriverError(f"printer {self.name!r} ({self.where}): {_one_line(err)}") from err
        if self._printer.device is None:  # Usb.open() checks with an assert: gone under -O
            self._printer.device = False
            raise DriverError(f"printer {self.name!r} ({self.where}): device not found")
        self._connected = True

    def _drop(self) -> None:
        """Close the connection, whatever state it is in; the next call reopens it."""
        self._connected = False
        printer = getattr(self, "_printer", None)
        if printer is None:
            return
        with contextlib.suppress(*self._errors), root_logging_kept():
            printer.close()
        printer.device = False  # a close that failed half-way must not be reused

    def _lost(self, reason: str) -> None:
        if self._away is None:
            logger.warning("printer %r (%s) is unreachable: %s", self.name, self.where, reason)
        self._away = reason

    def _back(self) -> None:
        if self._away is not None:
            logger.info("printer %r (%s) is back", self.name, self.where)
            self._away = None

    @contextlib.contextmanager
    def _write_timeout(self) -> Any:
        """Writes get ``PRINT_TIMEOUT`` (a raster QR takes seconds on a slow line), status
        queries only ``timeout``."""
        device, kind = self._printer.device, self.cfg.connection
        if kind == "network":
            device.settimeout(max(PRINT_TIMEOUT, self.cfg.timeout))
        elif kind == "serial":
            device.write_timeout = max(PRINT_TIMEOUT, self.cfg.timeout)
        elif kind == "usb":
            self._printer.timeout = int(max(PRINT_TIMEOUT, self.cfg.timeout) * 1000)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                if kind == "network":
                    device.settimeout(self.cfg.timeout)
                elif kind == "serial":
                    device.write_timeout = None
                elif kind == "usb":
                    self._printer.timeout = int(self.cfg.timeout * 1000)

    # ------------------------------------------------------------------ status

    def _query(self) -> frozenset[Fault]:
        if self.cfg.connection == "file":
            return self._file_status()
        from escpos.constants import RT_STATUS, RT_STATUS_ONLINE, RT_STATUS_PAPER

        self._drain()
        online = self._ask(RT_STATUS_ONLINE)
        paper = self._ask(RT_STATUS_PAPER)
        cause = self._ask(RT_STATUS + b"\x02") if online & OFFLINE_BIT else None
        return faults_from_status(online, paper, cause)

    def _ask(self, query: bytes) -> int:
        try:
            if self.cfg.connection == "serial":
                # escpos reads 16 bytes, and pyserial then waits out the whole timeout for
                # a 1-byte answer: ask for the one byte.
                self._printer._raw(query)
                reply = self._printer.device.read(1)
            else:
                reply = self._printer.query_status(query)
        except TimeoutError as err:  # a socket's timeout (serial reads return b"")
            raise _NoReply(f"no answer to DLE EOT {query[-1]} within {self.cfg.timeout} s") from err
        byte = status_reply(reply)
        if byte is None:
            raise _NoReply(
                f"no answer to DLE EOT {query[-1]} within {self.cfg.timeout} s"
                if not reply
                else f"unexpected reply {reply.hex()} to DLE EOT {query[-1]}"
            )
        return byte

    def _drain(self) -> None:
        """Throw away bytes waiting in the input (late or unasked-for replies)."""
        device, kind = self._printer.device, self.cfg.connection
        if kind == "serial":
            device.reset_input_buffer()
        elif kind == "network":
            device.setblocking(False)
            try:
                for _ in range(64):
                    if not device.recv(4096):
                        raise ConnectionResetError("the printer closed the connection")
            except BlockingIOError:
                pass
            finally:
                device.settimeout(self.cfg.timeout)
        elif kind == "usb":
            import usb.core

            for _ in range(8):
                try:
                    device.read(self.cfg.usb_in_ep, 64, 1)
                except usb.core.USBTimeoutError:
                    break

    def _file_status(self) -> frozenset[Fault]:
        if not os.path.exists(self.cfg.device):
            raise FileNotFoundError(errno.ENOENT, "device is gone", self.cfg.device)
        port = lp_port_status(self._printer.device.fileno())
        return frozenset() if port is None else faults_from_lp_status(port)
