"""125 kHz (EM4100-style) credential readers on a serial port.

Such a reader sends one frame per read: STX (0x02), 10 ASCII hex digits (a version or
customer byte and the 4-byte card id), 2 ASCII hex digits of checksum (the XOR of those 5
bytes), ETX (0x03). Some readers put CR/LF before the ETX; they are accepted and ignored,
as are CR/LF between frames. The UID reported is the 10 digits, upper case.

A serial line carries noise: at power-up, from a loose cable, from a reader set to another
format. Anything that is not a valid frame (bad checksum, wrong length, non-hex, bytes
outside frames, a frame cut short by a new STX, an over-long frame) is dropped and counted
(``frames_ok``, ``frames_rejected``, ``bytes_discarded``), with at most one warning line
per ``warn_interval`` — never one per byte — and it never stops the reader thread.

Threads (:class:`drivers.serial_link.SerialLink`): pyserial's ``ReaderThread`` reads the
port and hands bytes to :class:`FrameProtocol` (a ``FramedPacket``), which only calls the
callbacks. A supervising thread waits for the port to be lost (USB adapter unplugged, pty
master closed), reports ``on_health(False, reason)`` once, reopens it with backoff and
reports ``on_health(True, "")`` once it is back. ``cfg.port`` may be a device or any
pyserial URL (``socket://host:port``, ``loop://``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import reduce
from operator import xor

import serial
from serial.threaded import FramedPacket

from controller.settings import SerialReaderSection
from drivers.rfid import HealthCallback, UidCallback
from drivers.serial_link import LostCallback, SerialLink, ignore

logger = logging.getLogger(__name__)

STX, ETX = b"\x02", b"\x03"
_FRAME = re.compile(rb"([0-9A-Fa-f]{10})([0-9A-Fa-f]{2})[\r\n]*")
#: Longest frame body kept while waiting for ETX (12 digits, CR/LF and slack).
MAX_FRAME = 16
_IGNORED_BETWEEN_FRAMES = b"\r\n"


def parse_frame(body: bytes) -> str:
    """The UID in a frame body (between STX and ETX); ValueError saying what is wrong."""
    match = _FRAME.fullmatch(body)
    if match is None:
        raise ValueError("not 10 hex digits and a 2-digit checksum")
    data = bytes.fromhex(match[1].decode("ascii"))
    checksum = int(match[2], 16)
    if reduce(xor, data) != checksum:
        raise ValueError(f"checksum {checksum:02X}, expected {reduce(xor, data):02X}")
    return match[1].decode("ascii").upper()


class FrameProtocol(FramedPacket):
    """STX ... ETX framing that survives noise; only calls the callbacks it is given."""

    START = STX
    STOP = ETX
    in_packet: bool
    packet: bytearray

    def __init__(
        self,
        on_uid: Callable[[str], None],
        on_reject: Callable[[str, bytes], None] = ignore,
        on_stray: Callable[[bytes], None] = ignore,
        on_lost: Callable[[BaseException | None], None] = ignore,
    ) -> None:
        super().__init__()
        self.on_uid = on_uid
        self.on_reject = on_reject
        self.on_stray = on_stray
        self.on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        # FramedPacket's loop, but a new STX drops a frame cut short instead of gluing it
        # to the next one, a lone ETX is not an empty packet, and length is bounded.
        for byte in serial.iterbytes(data):
            if byte == self.START:
                if self.in_packet:
                    self.on_reject("frame cut short by a new STX", bytes(self.packet))
                self.in_packet = True
                del self.packet[:]
            elif byte == self.STOP and self.in_packet:
                self.in_packet = False
                packet = bytes(self.packet)
                del self.packet[:]
                self.handle_packet(packet)
            elif self.in_packet:
                self.packet.extend(byte)
                if len(self.packet) > MAX_FRAME:
                    self.on_reject("over-long frame", bytes(self.packet))
                    self.in_packet = False
                    del self.packet[:]
            else:
                self.handle_out_of_packet_data(byte)

    def handle_packet(self, packet: bytes) -> None:
        try:
            uid = parse_frame(packet)
        except ValueError as err:
            self.on_reject(str(err), packet)
            return
        self.on_uid(uid)

    def handle_out_of_packet_data(self, data: bytes) -> None:
        if data not in _IGNORED_BETWEEN_FRAMES:
            self.on_stray(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        # Not FramedPacket's: its base re-raises ``exc`` inside the reader thread.
        self.transport = None
        self.in_packet = False
        del self.packet[:]
        self.on_lost(exc)


class _RejectLog:
    """At most one warning per ``interval`` summarising what was dropped since the last."""

    def __init__(self, where: str, interval: float) -> None:
        self.where, self.interval = where, interval
        self.frames = self.stray = 0
        self._next = 0.0

    def note(self, frames: int, stray: int, what: str) -> None:
        self.frames += frames
        self.stray += stray
        now = time.monotonic()
        if now < self._next:
            return
        logger.warning(
            "%s: dropped %d bad frame(s) and %d stray byte(s) (last: %s); "
            "next report in %.0f s at the earliest",
            self.where,
            self.frames,
            self.stray,
            what,
            self.interval,
        )
        self.frames = self.stray = 0
        self._next = now + self.interval


class SerialRfidReader(SerialLink):
    """RfidReader for a 125 kHz serial reader. ``start`` raises DriverError if the port
    cannot be opened."""

    warn_interval = 60.0

    def __init__(self, cfg: SerialReaderSection, name: str = "serial") -> None:
        super().__init__(cfg, name, f"rfid-{name}", logger)
        self.frames_ok = 0
        self.frames_rejected = 0
        self.bytes_discarded = 0
        self._on_uid: UidCallback | None = None
        self._on_health: HealthCallback | None = None
        self._rejects = _RejectLog(self.where, self.warn_interval)

    @property
    def where(self) -> str:
        return f"serial reader on {self.cfg.port}"

    def start(self, on_uid: UidCallback, on_health: HealthCallback) -> None:
        self._not_started()
        self._on_uid, self._on_health = on_uid, on_health
        self._rejects.interval = self.warn_interval
        self._open()

    # -- port (supervisor thread) --------------------------------------------------------

    def _protocol(self, on_lost: LostCallback) -> FrameProtocol:
        return FrameProtocol(self._frame, self._reject, self._stray, on_lost)

    def _went_away(self, reason: str) -> None:
        self._report(False, reason)

    def _came_back(self) -> None:
        self._report(True, "")

    def _report(self, ok: bool, reason: str) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(ok, reason)
        except Exception:  # a consumer bug must not kill the supervisor
            logger.exception("%s: the health callback failed", self.where)

    # -- frames (reader thread) ----------------------------------------------------------

    def _frame(self, uid: str) -> None:
        self.frames_ok += 1
        self._deliver(self._on_uid, uid, "UID")

    def _reject(self, reason: str, packet: bytes) -> None:
        self.frames_rejected += 1
        self._rejects.note(1, 0, f"{reason} in {packet[:32]!r}")

    def _stray(self, data: bytes) -> None:
        self.bytes_discarded += len(data)
        self._rejects.note(0, len(data), f"stray byte {data!r} outside a frame")
