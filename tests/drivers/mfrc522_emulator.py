"""A register-level emulator of the MFRC522 reader chip and ISO 14443-A cards.

The real ``mfrc522`` library (and our driver on top of it) talks to the chip only through
``spidev.SpiDev.xfer2([address, value])`` and drives its reset pin through ``RPi.GPIO``.
This module provides fakes of both modules, wired to an emulated chip, so that library and
driver code run unchanged in tests off a Pi. It is a test instrument: it counts every SPI
transfer and records every frame sent to the field, and it can fail on purpose (a reader
that is unplugged, a bus that raises ``OSError``).

What is modelled (NXP MFRC522 datasheet rev. 3.9, ISO/IEC 14443-3):

- SPI framing: address byte ``(reg << 1) & 0x7E``, bit 7 set for a read; burst reads (one
  address per byte) and burst writes (several values to one address, e.g. the FIFO).
- Registers with their reset values; the 64-byte FIFO (FIFOLevelReg, FlushBuffer,
  BufferOvfl); ComIrqReg/DivIrqReg with the Set1/Set2 write semantics; ErrorReg; CollReg;
  ControlReg's RxLastBits; BitFramingReg's StartSend, RxAlign and TxLastBits; Status1Reg;
  Status2Reg's MFCrypto1On; TxControlReg (antenna); VersionReg (0x92 by default).
- Commands: Idle, Mem and GenerateRandomID (no-ops), CalcCRC (CRC_A coprocessor fed by the
  FIFO, stays active until another command), Transmit, Transceive (transmits on StartSend,
  then keeps receiving: it never ends by itself, so IdleIRq is not set), MFAuthent,
  SoftReset (antenna off, so cards lose power). Unknown commands go Idle with IdleIRq.
- TxCRCEn/RxCRCEn (TxModeReg/RxModeReg bit 7) append and check CRC_A in hardware.
- The timer: prescaler and reload from TModeReg/TPrescalerReg/TReloadReg, TAuto (starts at
  the end of a transmission, stopped by a card's answer), TAutoRestart, TStartNow/TStopNow.
  It runs on a real clock (``time.monotonic`` unless another is given), so a driver that
  waits for TimerIRq really waits ~25 ms and a busy loop really spins.
- Cards (:class:`Card`): IDLE/READY/ACTIVE/HALT; REQA (not answered in HALT) and WUPA as
  7-bit short frames; ATQA by UID size; bit-oriented anticollision and SELECT at cascade
  levels 1-3 with cascade tag 0x88, BCC and CRC_A checks; SAK with the cascade bit; HLTA;
  READ (16 bytes + CRC_A); WRITE (two phases, 4-bit ACK 0xA); any error sends the card back
  to IDLE (or HALT when it was woken from HALT), as ISO 14443-3 says.
- Several cards in the field answer together: differing bits are a collision (CollErr,
  CollReg's CollPos, bits after it cleared unless ValuesAfterColl is set). CollPos is taken
  to count FIFO bit positions from bit 0 of the first received byte, the RxAlign offset
  included; the datasheet does not say it plainly (see the driver for why this is safe).

Not modelled: Crypto1. MFAuthent succeeds when the key and UID bytes match the card and
then sets MFCrypto1On; afterwards frames stay in plain text. While MFCrypto1On is set,
short frames (REQA/WUPA) are garbled for other cards, as on the real chip. Parity bits,
RF timing, the IRQ pin, Ultralight page semantics (READ returns the addressed 16-byte
block) and the self-test are not modelled either.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from iso14443a_card import (  # noqa: F401 - re-exported for the tests
    ACK,
    CASCADE_TAG,
    HLTA,
    NAK_NOT_ALLOWED,
    NAK_TRANSMISSION,
    READ,
    REQA,
    SEL,
    WRITE,
    WUPA,
    Card,
    CardState,
    Transmission,
    crc_a,
    from_bits,
    to_bits,
)

# Registers (datasheet section 9.2).
COMMAND, COM_IEN, DIV_IEN, COM_IRQ, DIV_IRQ, ERROR, STATUS1, STATUS2 = range(1, 9)
FIFO_DATA, FIFO_LEVEL, WATER_LEVEL, CONTROL, BIT_FRAMING, COLL = range(9, 15)
MODE, TX_MODE, RX_MODE, TX_CONTROL, TX_ASK = range(0x11, 0x16)
CRC_RESULT_H, CRC_RESULT_L = 0x21, 0x22
T_MODE, T_PRESCALER, T_RELOAD_H, T_RELOAD_L = range(0x2A, 0x2E)
VERSION = 0x37

RESET_VALUES = {
    COMMAND: 0x20, COM_IEN: 0x80, COM_IRQ: 0x14, STATUS1: 0x21, WATER_LEVEL: 0x08,
    CONTROL: 0x10, COLL: 0xA0, 0x10: 0x00, MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10,
    0x17: 0x84, 0x18: 0x84, 0x19: 0x4D, 0x1C: 0x62, 0x1F: 0xEB, CRC_RESULT_H: 0xFF,
    CRC_RESULT_L: 0xFF, 0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20,
}  # fmt: skip

# Commands (section 10.3).
CMD_IDLE, CMD_CALC_CRC, CMD_TRANSMIT, CMD_NO_CHANGE, CMD_RECEIVE = 0x0, 0x3, 0x4, 0x7, 0x8
CMD_TRANSCEIVE, CMD_AUTHENT, CMD_SOFT_RESET = 0xC, 0xE, 0xF

# ComIrqReg bits.
TX_IRQ, RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x02, 0x01
CRC_IRQ = 0x04  # DivIrqReg
# ErrorReg bits.
ERR_BUFFER_OVFL, ERR_COLL, ERR_CRC, ERR_PROTOCOL = 0x10, 0x08, 0x04, 0x01
CRYPTO1_ON = 0x08  # Status2Reg
FIFO_SIZE = 64
CLOCK_HZ = 13_560_000


class Mfrc522Chip:
    """One MFRC522 with the cards in its field. Thread-safe; every SPI transfer is counted."""

    def __init__(self, version: int = 0x92, clock: Callable[[], float] = time.monotonic) -> None:
        self.version = version
        self.clock = clock
        self.cards: list[Card] = []
        self.bus_error = False
        self.spi_transfers = 0
        self.reg_reads: Counter[int] = Counter()
        self.reg_writes: Counter[int] = Counter()
        self.transmissions: list[Transmission] = []
        self._cond = threading.Condition(threading.RLock())
        self._unplugged = False
        self._reset_line = True
        self._power_on_reset()

    # -- instrument surface ----------------------------------------------------------------

    @property
    def unplugged(self) -> bool:
        return self._unplugged

    @unplugged.setter
    def unplugged(self, value: bool) -> None:
        """Unplugged: no power, every read returns 0x00. Plugging in again is a power-on."""
        with self._cond:
            self._set_power(unplugged=value, reset_line=self._reset_line)

    @property
    def powered(self) -> bool:
        return self._reset_line and not self._unplugged

    @property
    def antenna_on(self) -> bool:
        return self.powered and bool(self.regs[TX_CONTROL] & 0x03)

    @property
    def requests(self) -> list[Transmission]:
        """The REQA/WUPA frames sent so far: one per poll for most drivers."""
        with self._cond:
            return [t for t in self.transmissions if t.is_request]

    def place(self, card: Card) -> Card:
        with self._cond:
            card.power_off()
            self.cards.append(card)
            self._cond.notify_all()
        return card

    def remove(self, card: Card) -> None:
        with self._cond:
            self.cards.remove(card)
            card.power_off()
            self._cond.notify_all()

    def reset_counters(self) -> None:
        with self._cond:
            self.spi_transfers = 0
            self.reg_reads.clear()
            self.reg_writes.clear()
            self.transmissions.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` (called with the chip locked) is true after a transfer."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def set_reset_line(self, high: bool) -> None:
        """NRSTPD pin: low is hard power-down, a rising edge is a reset."""
        with self._cond:
            self._set_power(unplugged=self._unplugged, reset_line=high)

    # -- SPI -------------------------------------------------------------------------------

    def spi_transfer(self, values: list[int]) -> list[int]:
        with self._cond:
            try:
                if self.bus_error:
                    raise OSError(errno.EIO, "Remote I/O error")
                self.spi_transfers += 1
                if not self.powered:
                    return [0] * len(values)
                return self._transfer(values)
            finally:
                self._cond.notify_all()

    def _transfer(self, values: list[int]) -> list[int]:
        if values[0] & 0x01:
            raise ValueError(f"SPI address byte 0x{values[0]:02X}: bit 0 must be 0")
        self._update_timer()
        out = [0]
        reg = (values[0] >> 1) & 0x3F
        if values[0] & 0x80:  # read: each following byte is the next address (last 0x00)
            for nxt in values[1:]:
                self.reg_reads[reg] += 1
                out.append(self._read(reg))
                reg = (nxt >> 1) & 0x3F
        else:  # write: every following byte goes to the same register
            for value in values[1:]:
                self.reg_writes[reg] += 1
                self._write(reg, value)
                out.append(0)
        return out

    # -- power and reset -------------------------------------------------------------------

    def _set_power(self, *, unplugged: bool, reset_line: bool) -> None:
        was = self.powered
        self._unplugged, self._reset_line = unplugged, reset_line
        if was and not self.powered:
            self._field_off()
        elif self.powered and not was:
            self._power_on_reset()
        self._cond.notify_all()

    def _power_on_reset(self) -> None:
        self.regs = bytearray(64)
        for reg, value in RESET_VALUES.items():
            self.regs[reg] = value
        self.fifo = bytearray()
        self.command = CMD_IDLE
        self.com_irq, self.div_irq, self.error, self.rx_last_bits = 0x14, 0x00, 0x00, 0
        self._crc = 0
        self._timer_deadline: float | None = None
        self._field_off()

    def _field_off(self) -> None:
        for card in self.cards:
            card.power_off()

    # -- registers -------------------------------------------------------------------------

    def _read(self, reg: int) -> int:
        if reg == FIFO_DATA:
            return self.fifo.pop(0) if self.fifo else 0
        if reg == FIFO_LEVEL:
            return len(self.fifo)
        if reg == COM_IRQ:
            return self.com_irq & 0x7F
        if reg == DIV_IRQ:
            return self.div_irq & 0x7F
        if reg == ERROR:
            return self.error
        if reg == STATUS1:
            return self._status1()
        if reg == CONTROL:
            return (self.regs[CONTROL] & 0xF8) | self.rx_last_bits
        if reg == COMMAND:
            return (self.regs[COMMAND] & 0x30) | self.command
        if reg == VERSION:
            return self.version
        return self.regs[reg]

    def _write(self, reg: int, value: int) -> None:
        if reg == COMMAND:
            self.regs[COMMAND] = value & 0x30
            self._start_command(value & 0x0F)
        elif reg in (COM_IRQ, DIV_IRQ):
            current = self.com_irq if reg == COM_IRQ else self.div_irq
            current = current | (value & 0x7F) if value & 0x80 else current & ~value & 0x7F
            if reg == COM_IRQ:
                self.com_irq = current
            else:
                self.div_irq = current
        elif reg == FIFO_DATA:
            self._fifo_push(value)
        elif reg == FIFO_LEVEL:
            if value & 0x80:  # FlushBuffer
                self.fifo.clear()
                self.error &= ~ERR_BUFFER_OVFL
        elif reg == CONTROL:
            if value & 0x80:
                self._timer_deadline = None  # TStopNow
            if value & 0x40:
                self._start_timer()  # TStartNow
        elif reg == BIT_FRAMING:
            self.regs[BIT_FRAMING] = value
            if value & 0x80 and self.command == CMD_TRANSCEIVE:
                self._transmit(expect_answer=True)
        elif reg == COLL:
            self.regs[COLL] = (self.regs[COLL] & 0x7F) | (value & 0x80)
        elif reg == STATUS2:
            keep_crypto = self.regs[STATUS2] & value & CRYPTO1_ON  # the host can only clear it
            self.regs[STATUS2] = (value & 0xC0) | keep_crypto
        elif reg == TX_CONTROL:
            self.regs[TX_CONTROL] = value
            if not value & 0x03:
                self._field_off()
        elif reg not in (ERROR, STATUS1, VERSION):
            self.regs[reg] = value

    def _status1(self) -> int:
        level = len(self.fifo)
        water = self.regs[WATER_LEVEL] & 0x3F
        irq = (self.com_irq & self.regs[COM_IEN] & 0x7F) or (self.div_irq & self.regs[DIV_IEN])
        crc_ok = self.regs[CRC_RESULT_L] == 0 and self.regs[CRC_RESULT_H] == 0
        return (
            (0x40 if crc_ok else 0)
            | 0x20  # CRCReady: the emulated coprocessor is instantaneous
            | (0x10 if irq else 0)
            | (0x08 if self._timer_deadline is not None else 0)
            | (0x02 if FIFO_SIZE - level <= water else 0)
            | (0x01 if level <= water else 0)
        )

    def _fifo_push(self, value: int) -> None:
        if self.command == CMD_CALC_CRC:  # the coprocessor consumes the data stream
            self._crc_feed([value])
            return
        if len(self.fifo) >= FIFO_SIZE:
            self.error |= ERR_BUFFER_OVFL
            self.com_irq |= ERR_IRQ
            return
        self.fifo.append(value)

    # -- commands --------------------------------------------------------------------------

    def _start_command(self, command: int) -> None:
        if command == CMD_NO_CHANGE:
            return
        if command == CMD_SOFT_RESET:
            self._power_on_reset()  # antenna off too: the cards lose power
            return
        self.command = command
        if command == CMD_CALC_CRC:
            self._crc = (0x0000, 0x6363, 0xA671, 0xFFFF)[self.regs[MODE] & 0x03]
            data, self.fifo = bytes(self.fifo), bytearray()
            self._crc_feed(data)
        elif command == CMD_TRANSMIT:
            self._transmit(expect_answer=False)
            self._finish()
        elif command == CMD_AUTHENT:
            self._authenticate()
        elif command not in (CMD_IDLE, CMD_RECEIVE, CMD_TRANSCEIVE):
            self._finish()  # Mem, GenerateRandomID: done at once; unknown: Idle + IdleIRq

    def _finish(self) -> None:
        self.command = CMD_IDLE
        self.com_irq |= IDLE_IRQ

    def _crc_feed(self, data: Iterable[int]) -> None:
        preset = self._crc
        result = crc_a(data, preset)
        self._crc = result[0] | result[1] << 8
        self.regs[CRC_RESULT_L], self.regs[CRC_RESULT_H] = result[0], result[1]
        self.div_irq |= CRC_IRQ

    def _crypto_on(self) -> bool:
        return bool(self.regs[STATUS2] & CRYPTO1_ON)

    def _transmit(self, *, expect_answer: bool) -> None:
        data, self.fifo = bytes(self.fifo), bytearray()
        tx_last = self.regs[BIT_FRAMING] & 0x07
        nbits = len(data) * 8 - ((8 - tx_last) if tx_last and data else 0)
        if self.regs[TX_MODE] & 0x80 and nbits % 8 == 0:  # TxCRCEn
            data += crc_a(data)
            nbits += 16
        self.error = 0
        self.regs[COLL] = (self.regs[COLL] & 0x80) | 0x20
        self.rx_last_bits = 0
        self._timer_deadline = None
        self.com_irq |= TX_IRQ
        answers: list[list[int]] = []
        if self.antenna_on and nbits:
            bits = to_bits(data, nbits)
            crypto = self._crypto_on()
            for card in self.cards:
                answer = card.receive(bits, crypto)
                if answer is not None:
                    answers.append(answer)
        if self.regs[COMMAND] & 0x20:  # RcvOff: the receiver hears nothing
            answers = []
        kind = "transceive" if expect_answer else "transmit"
        self.transmissions.append(
            Transmission(kind, data, nbits, bool(answers), self.spi_transfers)
        )
        if not expect_answer:
            return
        if not answers:
            if self.regs[T_MODE] & 0x80:  # TAuto: timer runs from the end of transmission
                self._start_timer()
            return
        self._receive(answers)

    def _receive(self, answers: list[list[int]]) -> None:
        bits, collision = self._superpose(answers)
        align = (self.regs[BIT_FRAMING] >> 4) & 0x07
        received = from_bits(bits, align)
        self.rx_last_bits = (align + len(bits)) % 8
        if collision is not None:
            self.error |= ERR_COLL
            position = align + collision + 1
            self.regs[COLL] = (self.regs[COLL] & 0x80) | (
                position & 0x1F if position <= 32 else 0x20
            )
        if self.regs[RX_MODE] & 0x80:  # RxCRCEn: check and strip CRC_A
            ok = self.rx_last_bits == 0 and len(received) >= 3
            if ok and crc_a(received[:-2]) == received[-2:]:
                received = received[:-2]
            else:
                self.error |= ERR_CRC
        for byte in received:
            self._fifo_push(byte)
        self.com_irq |= RX_IRQ | (ERR_IRQ if self.error else 0)

    def _superpose(self, answers: list[list[int]]) -> tuple[list[int], int | None]:
        """What the receiver hears when several cards answer at once."""
        length = max(len(a) for a in answers)
        keep_after = bool(self.regs[COLL] & 0x80)  # ValuesAfterColl
        bits: list[int] = []
        collision: int | None = None
        for i in range(length):
            values = {a[i] for a in answers if i < len(a)}
            if collision is None and len(values) > 1:
                collision = i
            if collision is None:
                bits.append(values.pop())
            else:
                bits.append(int(1 in values) if keep_after else 0)
        return bits, collision

    def _authenticate(self) -> None:
        data, self.fifo = bytes(self.fifo), bytearray()
        active = [c for c in self.cards if c.state is CardState.ACTIVE] if self.antenna_on else []
        ok = False
        if len(data) != 12 or data[0] not in (0x60, 0x61):
            self.error = ERR_PROTOCOL
            self.com_irq |= ERR_IRQ
            self._finish()
        elif len(active) == 1:
            ok = active[0].authenticate(data[1], data[2:8], data[8:12])
        self.transmissions.append(
            Transmission("authent", data, len(data) * 8, ok, self.spi_transfers)
        )
        if ok:
            self.regs[STATUS2] |= CRYPTO1_ON
            self._finish()
        elif self.command == CMD_AUTHENT and self.regs[T_MODE] & 0x80:
            self._start_timer()  # the card stays silent; only the timer ends the wait

    # -- timer -----------------------------------------------------------------------------

    def timer_period(self) -> float:
        prescaler = (self.regs[T_MODE] & 0x0F) << 8 | self.regs[T_PRESCALER]
        reload = self.regs[T_RELOAD_H] << 8 | self.regs[T_RELOAD_L]
        return (2 * prescaler + 1) * (reload + 1) / CLOCK_HZ

    def _start_timer(self) -> None:
        self._timer_deadline = self.clock() + self.timer_period()

    def _update_timer(self) -> None:
        if self._timer_deadline is None or self.clock() < self._timer_deadline:
            return
        self.com_irq |= TIMER_IRQ
        if self.regs[T_MODE] & 0x10:  # TAutoRestart
            self._start_timer()
        else:
            self._timer_deadline = None
