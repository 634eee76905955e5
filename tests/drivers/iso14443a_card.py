"""ISO 14443-A cards for the MFRC522 emulator: the card side of the air interface.

State machine IDLE/READY/ACTIVE/HALT, REQA/WUPA, anticollision and SELECT at cascade
levels 1-3 (cascade tag 0x88, BCC, CRC_A), HLTA, READ and WRITE, as ISO/IEC 14443-3
describes them. The chip side is in ``mfrc522_emulator``; see its docstring for what is
modelled and what is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

# Card commands (ISO 14443-3, MIFARE).
REQA, WUPA, HLTA, READ, WRITE = 0x26, 0x52, 0x50, 0x30, 0xA0
SEL = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
ACK, NAK_NOT_ALLOWED, NAK_TRANSMISSION = 0xA, 0x4, 0x5


def crc_a(data: Iterable[int], preset: int = 0x6363) -> bytes:
    """ISO/IEC 14443-3 CRC_A, low byte first (``crc_a(b"\\x50\\x00") == b"\\x57\\xcd"``)."""
    crc = preset
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return bytes([crc & 0xFF, crc >> 8])


def to_bits(data: bytes, nbits: int | None = None) -> list[int]:
    """Bits in air order: each byte least significant bit first."""
    bits = [(byte >> i) & 1 for byte in data for i in range(8)]
    return bits if nbits is None else bits[:nbits]


def from_bits(bits: list[int], align: int = 0) -> bytes:
    """Pack bits (air order) into bytes, the first bit at bit position ``align``."""
    out = bytearray((align + len(bits) + 7) // 8)
    for i, bit in enumerate(bits, start=align):
        out[i // 8] |= bit << (i % 8)
    return bytes(out)


class CardState(Enum):
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"
    HALT = "halt"


@dataclass(eq=False)
class Card:
    """An ISO 14443-A card (MIFARE Classic when its SAK says so, else Ultralight-like).

    ``sak`` is the final SAK (default 0x08, MIFARE Classic 1K, for a 4-byte UID; 0x00,
    Ultralight/NTAG, otherwise). ``blocks`` maps a block number to 16 bytes (unset blocks
    read as zeros). Classic cards need MFAuthent with ``key`` before READ/WRITE.
    """

    uid: bytes
    sak: int | None = None
    blocks: dict[int, bytes] = field(default_factory=dict)
    key: bytes = b"\xff" * 6
    state: CardState = field(default=CardState.IDLE, init=False)
    level: int = field(default=0, init=False)
    woken_from_halt: bool = field(default=False, init=False)
    auth_sector: int | None = field(default=None, init=False)
    write_pending: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.uid = bytes(self.uid)
        if len(self.uid) not in (4, 7, 10):
            raise ValueError(f"a UID has 4, 7 or 10 bytes, not {len(self.uid)}")
        if self.uid[0] == CASCADE_TAG or (len(self.uid) == 10 and self.uid[3] == CASCADE_TAG):
            raise ValueError("0x88 is the cascade tag and cannot start a UID part")
        if self.sak is None:
            self.sak = 0x08 if len(self.uid) == 4 else 0x00
        self.blocks.setdefault(0, self.uid.ljust(16, b"\x00"))

    @property
    def levels(self) -> int:
        return {4: 1, 7: 2, 10: 3}[len(self.uid)]

    @property
    def atqa(self) -> bytes:
        """ATQA, low byte first: UID size in bits 7-6, bit-frame anticollision bit 2."""
        return bytes([(self.levels - 1) << 6 | 0x04, 0x00])

    @property
    def needs_auth(self) -> bool:
        return bool(self.sak and self.sak & 0x08)

    def cascade(self, level: int) -> bytes:
        """The 4 UID bytes sent at cascade level ``level`` (0-based) plus their BCC."""
        last = level == self.levels - 1
        part = (
            self.uid[3 * level :][:4] if last else bytes([CASCADE_TAG]) + self.uid[3 * level :][:3]
        )
        return part + bytes([part[0] ^ part[1] ^ part[2] ^ part[3]])

    def power_off(self) -> None:
        """Leaving the field (or the field going off) resets the card."""
        self.state, self.level, self.woken_from_halt = CardState.IDLE, 0, False
        self.auth_sector = self.write_pending = None

    def _fall_back(self) -> None:
        # ISO 14443-3: an unexpected or broken frame returns the card to IDLE, or to HALT
        # when it was woken from HALT.
        halted = self.woken_from_halt
        self.power_off()
        if halted:
            self.state = CardState.HALT

    def receive(self, bits: list[int], crypto_on: bool) -> list[int] | None:
        """Handle one frame from the reader; return the answer's bits or None (silence)."""
        data = from_bits(bits)
        if len(bits) == 7:
            if crypto_on:
                return None
            wakes = (data[0] == REQA and self.state is CardState.IDLE) or (
                data[0] == WUPA and self.state in (CardState.IDLE, CardState.HALT)
            )
            if wakes:
                self.woken_from_halt = self.state is CardState.HALT
                self.state, self.level = CardState.READY, 0
                return to_bits(self.atqa)
            if self.state in (CardState.READY, CardState.ACTIVE):
                self._fall_back()
            return None
        if self.state is CardState.READY:
            return self._select(bits, data)
        if self.state is CardState.ACTIVE:
            return self._active(bits, data)
        return None

    def _select(self, bits: list[int], data: bytes) -> list[int] | None:
        if len(bits) < 16 or data[0] != SEL[self.level]:
            self._fall_back()
            return None
        cl = self.cascade(self.level)
        if data[1] == 0x70:  # SELECT: all 40 bits plus CRC_A
            if len(bits) != 72 or crc_a(data[:7]) != data[7:9]:
                self._fall_back()
                return None
            if data[2:7] != cl:
                return None  # another card is being selected
            if self.level < self.levels - 1:
                self.level += 1
                sak = 0x04
            else:
                self.state, sak = CardState.ACTIVE, self.sak or 0
            return to_bits(bytes([sak]) + crc_a([sak]))
        nvb_bits = (data[1] >> 4) * 8 + (data[1] & 0x0F)
        known = len(bits) - 16
        if nvb_bits != len(bits) or not 0 <= known <= 32 or data[1] & 0x0F > 7:
            self._fall_back()
            return None
        cl_bits = to_bits(cl)
        if bits[16:] != cl_bits[:known]:
            return None  # our UID does not start with the bits the reader already knows
        return cl_bits[known:]

    def _active(self, bits: list[int], data: bytes) -> list[int] | None:
        if len(bits) % 8 or len(data) < 3 or crc_a(data[:-2]) != data[-2:]:
            self._fall_back()
            return None
        payload = data[:-2]
        if self.write_pending is not None:  # second phase of WRITE: 16 data bytes
            block, self.write_pending = self.write_pending, None
            if len(payload) != 16:
                self._fall_back()
                return to_bits(bytes([NAK_TRANSMISSION]), 4)
            self.blocks[block] = bytes(payload)
            return to_bits(bytes([ACK]), 4)
        if payload == bytes([HLTA, 0x00]):
            self.power_off()
            self.state = CardState.HALT
            return None
        if len(payload) == 2 and payload[0] in (READ, WRITE):
            block = payload[1]
            if block >= 64 or (self.needs_auth and self.auth_sector != block // 4):
                self._fall_back()
                return to_bits(bytes([NAK_NOT_ALLOWED]), 4)
            if payload[0] == WRITE:
                self.write_pending = block
                return to_bits(bytes([ACK]), 4)
            content = self.blocks.get(block, bytes(16))
            return to_bits(content + crc_a(content))
        self._fall_back()
        return None

    def authenticate(self, block: int, key: bytes, uid4: bytes) -> bool:
        """MFAuthent stand-in: no Crypto1, only the key and the UID bytes are compared."""
        if self.state is CardState.ACTIVE and key == self.key and uid4 == self.uid[-4:]:
            self.auth_sector = block // 4
            return True
        self._fall_back()
        return False


@dataclass(frozen=True)
class Transmission:
    """One frame the chip sent to the field (or one MFAuthent), for tests to inspect."""

    command: str  # "transceive", "transmit" or "authent"
    frame: bytes
    bits: int
    answered: bool
    at_transfer: int  # value of Mfrc522Chip.spi_transfers when it was sent

    @property
    def is_request(self) -> bool:
        return self.bits == 7 and self.frame[0] in (REQA, WUPA)
