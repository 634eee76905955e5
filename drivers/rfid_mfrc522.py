"""MFRC522 (13.56 MHz, ISO 14443-A) reader on SPI: full UIDs, cheap idle polls, recovery.

Built on the register access of the ``mfrc522`` package (its ``MFRC522`` class opens SPI,
wires the reset pin and offers ``Read_MFRC522``/``Write_MFRC522``), but none of its card
functions, because of flaws measured in docs (HARDWARE_NOTES.md):

- its ``MFRC522_ToCard`` wait loop ignores the timer interrupt (a bitwise-not bug), so an
  empty poll costs ~2,000 SPI reads of busy CPU; ``read_id()``/``read()`` spin at 100 %;
- it only does cascade level 1, so 7-byte wristbands read as ``0x88`` + 3 bytes and
  different wristbands get the same id; it never sends HLTA.

So this module has its own transceive (FIFO, StartSend, then ComIrqReg polled with short
sleeps until RxIRq or the chip's 25 ms timer, bounded by a deadline) and the ISO 14443-3
activation: REQA, bit-oriented anticollision and SELECT at cascade levels 1-3 with BCC and
CRC_A checks, then HLTA so a card held in the field is reported once per presentation
(the application still debounces per UID). CRC_A is computed in Python: cheaper than
feeding the chip's coprocessor over SPI. An empty poll costs about 15 SPI transfers.

On a collision (two cards in the field) the reader picks the branch with a 1 bit and
carries on. Where CollReg's CollPos counts from is not spelled out by the datasheet; we
take it as counting FIFO bit positions, RxAlign included. Were that wrong on some chip
revision, the SELECT that follows names no card, nobody answers and the poll yields
nothing: a wrong UID can never come out of it (BCC and the card's own SELECT check).

Threads: one daemon thread per reader polls and only calls the callbacks. A reader that
stops answering (SPI error, VersionReg changed, a command that never completes) is
reported once with ``on_health(False, reason)``, re-initialised with backoff and reported
once with ``on_health(True, "")`` when it answers again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from controller.settings import Mfrc522Section
from drivers.rfid import HealthCallback, UidCallback
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

# Registers and bits (NXP MFRC522 datasheet, section 9).
COMMAND, COM_IRQ, ERROR, FIFO_DATA, FIFO_LEVEL, CONTROL = 0x01, 0x04, 0x06, 0x09, 0x0A, 0x0C
BIT_FRAMING, COLL, MODE, TX_CONTROL, TX_ASK = 0x0D, 0x0E, 0x11, 0x14, 0x15
T_MODE, T_PRESCALER, T_RELOAD_H, T_RELOAD_L, VERSION = 0x2A, 0x2B, 0x2C, 0x2D, 0x37
CMD_IDLE, CMD_TRANSCEIVE, POWER_DOWN = 0x00, 0x0C, 0x10
TX_IRQ, RX_IRQ, IDLE_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x01
ERR_COLL, ERR_FRAME = 0x08, 0x13  # CollErr; BufferOvfl | ParityErr | ProtocolErr
COLL_POS_NOT_VALID = 0x20

# ISO 14443-3 commands.
REQA, HLTA, CASCADE_TAG, SAK_CASCADE = 0x26, 0x50, 0x88, 0x04
SEL_CODES = (0x93, 0x95, 0x97)

#: The chip's timer ends a command nobody answers: TAuto, prescaler 169 (25 us ticks),
#: reload 1000 -> 25 ms. Our own deadline only catches a chip that stopped working.
TIMER_SETUP = ((T_MODE, 0x80), (T_PRESCALER, 0xA9), (T_RELOAD_H, 0x03), (T_RELOAD_L, 0xE8))
COMMAND_DEADLINE = 0.06
FIRST_PAUSE, LONGEST_PAUSE = 0.001, 0.008
ABSENT_VERSIONS = (0x00, 0xFF)  # what a floating or unpowered MISO line reads

_LIBRARY_LOGGER = "mfrc522Logger"


class ReaderFault(Exception):
    """The chip stopped answering; becomes on_health(False) or DriverError at start."""


def crc_a(data: Iterable[int]) -> bytes:
    """ISO/IEC 14443-3 CRC_A (preset 0x6363), low byte first."""
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return bytes([crc & 0xFF, crc >> 8])


@dataclass(frozen=True)
class Frame:
    """What the chip received: bytes, valid bits in the last byte (0 = 8), ErrorReg, CollReg."""

    data: bytes
    last_bits: int
    error: int
    coll: int


class Pcd:
    """ISO 14443-A activation over one ``mfrc522.MFRC522`` object's register access."""

    def __init__(self, dev: Any) -> None:
        self.dev = dev
        self.read = dev.Read_MFRC522
        self.write = dev.Write_MFRC522

    def configure(self) -> int:
        """Set the timer, modulation and CRC preset, switch the antenna on; return VersionReg."""
        version = int(self.read(VERSION))
        if version in ABSENT_VERSIONS:
            raise ReaderFault(f"no MFRC522 answers (VersionReg reads 0x{version:02X})")
        deadline = time.monotonic() + 0.05
        while self.read(COMMAND) & POWER_DOWN and time.monotonic() < deadline:
            time.sleep(0.001)  # still waking up from the library's soft reset
        for reg, value in (*TIMER_SETUP, (TX_ASK, 0x40), (MODE, 0x3D), (COLL, 0x00)):
            self.write(reg, value)  # 100 % ASK; CRC preset 0x6363; bits after collision = 0
        self.write(TX_CONTROL, self.read(TX_CONTROL) | 0x03)
        return version

    def transceive(
        self, frame: bytes, *, tx_last_bits: int = 0, rx_align: int = 0, answer: bool = True
    ) -> Frame | None:
        """Send ``frame``; return what came back, or None if nobody (or garbage) answered."""
        write = self.write
        write(COMMAND, CMD_IDLE)
        write(COM_IRQ, 0x7F)  # clear every interrupt request
        write(FIFO_LEVEL, 0x80)  # flush the FIFO
        for byte in frame:
            write(FIFO_DATA, byte)
        write(COMMAND, CMD_TRANSCEIVE)
        framing = rx_align << 4 | tx_last_bits
        write(BIT_FRAMING, 0x80 | framing)  # StartSend
        irq = self._wait(RX_IRQ | IDLE_IRQ | TIMER_IRQ if answer else TX_IRQ)
        write(BIT_FRAMING, framing)
        if not answer or not irq & (RX_IRQ | IDLE_IRQ):
            return None
        error = int(self.read(ERROR))
        if error & ERR_FRAME:
            return None
        count = int(self.read(FIFO_LEVEL))
        last_bits = int(self.read(CONTROL)) & 0x07
        data = bytes(int(self.read(FIFO_DATA)) for _ in range(count))
        coll = int(self.read(COLL)) if error & ERR_COLL else COLL_POS_NOT_VALID
        return Frame(data, last_bits, error, coll)

    def _wait(self, mask: int) -> int:
        """Poll ComIrqReg with growing sleeps (1, 2, 4, 8, 8 ... ms) until ``mask``."""
        deadline = time.monotonic() + COMMAND_DEADLINE
        pause = FIRST_PAUSE
        while True:
            time.sleep(pause)
            irq = int(self.read(COM_IRQ))
            if irq & mask:
                return irq
            if time.monotonic() >= deadline:
                raise ReaderFault(f"the reader did not finish a command (ComIrqReg 0x{irq:02X})")
            pause = min(pause * 2, LONGEST_PAUSE)

    def read_uid(self) -> bytes | None:
        """REQA, then anticollision and SELECT per cascade level, then HLTA: the full UID."""
        atqa = self.transceive(bytes([REQA]), tx_last_bits=7)
        if atqa is None or len(atqa.data) != 2:  # bit collisions in ATQA are allowed
            return None
        uid = bytearray()
        for sel in SEL_CODES:
            part = self._anticollision(sel)
            sak = None if part is None else self._select(sel, part)
            if part is None or sak is None:
                return None
            if not sak & SAK_CASCADE:
                uid += part[:4]
                halt = bytes([HLTA, 0x00])
                self.transceive(halt + crc_a(halt), answer=False)
                return bytes(uid)
            if part[0] != CASCADE_TAG:
                logger.debug("cascade bit set but no cascade tag in %s", part.hex())
                return None
            uid += part[1:4]
        return None  # a fourth level does not exist in ISO 14443

    def _anticollision(self, sel: int) -> bytes | None:
        """The 4 UID bytes and BCC of this cascade level, resolving bit collisions."""
        known = bytearray(5)
        known_bits = 0
        for _ in range(33):
            full, extra = divmod(known_bits, 8)
            frame = bytes([sel, (2 + full) << 4 | extra]) + known[: full + (extra > 0)]
            rx = self.transceive(frame, tx_last_bits=extra, rx_align=extra)
            if rx is None or not rx.data:
                return None
            got = bytearray(known[:full]) + rx.data  # FIFO byte 0 is UID byte `full`
            if extra:
                ours = (1 << extra) - 1
                got[full] = (known[full] & ours) | (rx.data[0] & ~ours & 0xFF)
            if not rx.error & ERR_COLL:
                if len(got) != 5 or rx.last_bits or got[0] ^ got[1] ^ got[2] ^ got[3] != got[4]:
                    logger.debug("anticollision answer %s fails its checks", got.hex())
                    return None
                return bytes(got)
            if rx.coll & COLL_POS_NOT_VALID:
                return None
            position = full * 8 + (rx.coll & 0x1F or 32)  # 1-based, over the 40 bits
            if not known_bits < position <= 32 or len(got) < (position + 7) // 8:
                return None
            known = bytearray(got[:5].ljust(5, b"\x00"))
            byte, bit = divmod(position - 1, 8)
            known[byte] = (known[byte] & ((1 << bit) - 1)) | 1 << bit  # take the 1 branch
            known_bits = position
        return None

    def _select(self, sel: int, part: bytes) -> int | None:
        frame = bytes([sel, 0x70]) + part
        rx = self.transceive(frame + crc_a(frame))
        if rx is None or rx.error or rx.last_bits or len(rx.data) != 3:
            return None
        if crc_a(rx.data[:1]) != rx.data[1:]:
            return None
        return rx.data[0]


class Mfrc522Reader:
    """RfidReader for an MFRC522 on SPI. ``start`` raises DriverError if it is absent."""

    #: First and longest pause between attempts to bring back a reader that went away.
    retry_initial = 0.2
    retry_max = 10.0
    stop_timeout = 2.0

    def __init__(self, cfg: Mfrc522Section, name: str = "mfrc522") -> None:
        self.name = name
        self.cfg = cfg
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mfrc522: Any = None  # the library's MFRC522 class, imported by start()
        self._gpio: Any = None
        self._pcd: Pcd | None = None
        self._version = 0
        self._healthy = True

    @property
    def where(self) -> str:
        c = self.cfg
        return f"MFRC522 on SPI {c.bus}.{c.device} (reset BCM {c.reset_pin})"

    def start(self, on_uid: UidCallback, on_health: HealthCallback) -> None:
        if self._thread is not None:
            raise DriverError(f"{self.where} is already started")
        self._import()
        try:
            self._open()
        except ReaderFault as err:
            raise DriverError(f"{self.where}: {err}; check the wiring and SPI") from err
        self._stop.clear()
        self._healthy = True
        self._thread = threading.Thread(
            target=self._run, args=(on_uid, on_health), name=f"rfid-{self.name}", daemon=True
        )
        self._thread.start()
        logger.info("%s ready (VersionReg 0x%02X)", self.where, self._version)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(self.stop_timeout)
        if thread.is_alive():
            logger.warning(
                "%s: poll thread did not stop within %.1f s", self.where, self.stop_timeout
            )
        if self._pcd is not None:
            # Antenna off; if the reader is gone, still release SPI and the pin below.
            with contextlib.suppress(OSError):
                self._pcd.write(TX_CONTROL, 0x80)
        self._close()

    # -- device --------------------------------------------------------------------------

    def _import(self) -> None:
        try:
            import RPi.GPIO as gpio
            from mfrc522 import MFRC522
        except (ImportError, RuntimeError) as err:  # RPi.GPIO raises RuntimeError off a Pi
            raise DriverError(
                f"{self.where} needs the mfrc522, spidev and RPi.GPIO modules (install the "
                f"`pi` extra; rpi-lgpio on a Pi 5) and SPI enabled (dtparam=spi=on): {err}"
            ) from err
        if gpio.getmode() not in (None, gpio.BCM):
            raise DriverError(f"{self.where}: RPi.GPIO is set to BOARD numbering, not BCM")
        self._mfrc522, self._gpio = MFRC522, gpio

    def _open(self) -> None:
        """Open SPI, reset and configure the chip; ReaderFault if it does not answer."""
        c = self.cfg
        lib_logger = logging.getLogger(_LIBRARY_LOGGER)
        handlers = list(lib_logger.handlers)
        # Built in two steps so that a constructor failing after it opened SPI (GPIO
        # refused, a bus error during its init) still leaves us the handle to close:
        # a reader retried every few seconds must not leak a file descriptor each time.
        dev = self._mfrc522.__new__(self._mfrc522)
        self._pcd = Pcd(dev)
        try:
            dev.__init__(
                bus=c.bus,
                device=c.device,
                spd=c.spi_speed_hz,
                pin_mode=self._gpio.BCM,
                pin_rst=c.reset_pin,
            )
            self._version = self._pcd.configure()
        except (OSError, RuntimeError, ValueError) as err:  # no /dev/spidev*, GPIO refused
            self._close()
            raise ReaderFault(f"cannot open it: {err}") from err
        except ReaderFault:
            self._close()
            raise
        finally:
            # Each MFRC522() adds a StreamHandler: drop them, our logging config decides.
            for handler in lib_logger.handlers[len(handlers) :]:
                lib_logger.removeHandler(handler)

    def _close(self) -> None:
        pcd, self._pcd = self._pcd, None
        spi = getattr(pcd.dev, "spi", None) if pcd is not None else None
        if spi is not None:
            try:
                spi.close()
            except OSError as err:
                logger.debug("closing SPI: %s", err)
        if self._gpio is not None:
            try:
                self._gpio.cleanup(self.cfg.reset_pin)  # only our pin, never the relay's
            except (RuntimeError, ValueError) as err:
                logger.debug("releasing the reset pin: %s", err)

    # -- poll thread ---------------------------------------------------------------------

    def _run(self, on_uid: UidCallback, on_health: HealthCallback) -> None:
        retry = self.retry_initial
        while not self._stop.is_set():
            try:
                if self._pcd is None:
                    self._open()
                uid = self._poll()
            except (ReaderFault, OSError) as err:
                self._close()
                self._set_health(False, str(err), on_health)
                self._stop.wait(retry)
                retry = min(retry * 2, self.retry_max)
                continue
            retry = self.retry_initial
            self._set_health(True, "", on_health)
            if uid is not None:
                try:
                    on_uid(uid)
                except Exception:  # a consumer bug must not kill the reader thread
                    logger.exception("%s: the UID callback failed", self.where)
            self._stop.wait(self.cfg.poll_interval)

    def _poll(self) -> str | None:
        assert self._pcd is not None
        version = int(self._pcd.read(VERSION))
        if version != self._version:
            raise ReaderFault(f"VersionReg reads 0x{version:02X}, not 0x{self._version:02X}")
        uid = self._pcd.read_uid()
        return uid.hex().upper() if uid else None

    def _set_health(self, ok: bool, reason: str, on_health: HealthCallback) -> None:
        if ok == self._healthy:
            return
        self._healthy = ok
        if ok:
            logger.info("%s answers again", self.where)
        else:
            logger.warning("%s stopped answering: %s (retrying)", self.where, reason)
        try:
            on_health(ok, reason)
        except Exception:  # as for on_uid
            logger.exception("%s: the health callback failed", self.where)
