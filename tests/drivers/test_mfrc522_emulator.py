"""The MFRC522 emulator against the real ``mfrc522`` library's own functions.

If the library's level-1 calls (request, anticollision, select, auth, read, write) work
against the emulator, the emulator behaves as the library expects a chip to behave; the
same tests document the library's flaws that our driver works around.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mfrc522_emulator import (
    COM_IRQ,
    ERR_BUFFER_OVFL,
    ERR_COLL,
    TIMER_IRQ,
    Card,
    CardState,
    Mfrc522Chip,
    crc_a,
)
from pi_fakes import Mfrc522Rig

UID4 = bytes.fromhex("DEADBEEF")
BAND_A = bytes.fromhex("04A1B2C3D4E5F6")
BAND_B = bytes.fromhex("04A1B2FFEEDDCC")  # same first three bytes as BAND_A


@pytest.fixture
def lib(mfrc522_rig: Mfrc522Rig) -> Iterator[Any]:
    """The library's MFRC522 class on the emulated chip (its log handler removed after)."""
    from mfrc522 import MFRC522

    logger = logging.getLogger("mfrc522Logger")
    before = list(logger.handlers)
    reader = MFRC522(bus=0, device=0, pin_mode=11, pin_rst=25)
    yield reader
    for handler in logger.handlers[len(before) :]:
        logger.removeHandler(handler)


def select(lib: Any) -> list[int]:
    status, _ = lib.MFRC522_Request(lib.PICC_REQIDL)
    assert status == lib.MI_OK
    status, uid = lib.MFRC522_Anticoll()
    assert status == lib.MI_OK
    assert lib.MFRC522_SelectTag(uid) != 0
    return uid


def test_version_register_reads_0x92(lib: Any) -> None:
    assert lib.Read_MFRC522(lib.VersionReg) == 0x92


def test_request_anticoll_and_select_a_4_byte_card(lib: Any, chip: Mfrc522Chip) -> None:
    card = chip.place(Card(UID4))

    status, bits = lib.MFRC522_Request(lib.PICC_REQIDL)
    _, uid = lib.MFRC522_Anticoll()
    sak = lib.MFRC522_SelectTag(uid)

    assert (status, bits) == (lib.MI_OK, 16)
    assert uid == [0xDE, 0xAD, 0xBE, 0xEF, 0xDE ^ 0xAD ^ 0xBE ^ 0xEF]  # UID + BCC
    assert sak == 0x08
    assert card.state is CardState.ACTIVE


def test_crc_coprocessor_computes_crc_a(lib: Any) -> None:
    assert lib.CalulateCRC([0x50, 0x00]) == [0x57, 0xCD]  # HLTA's well-known CRC
    assert crc_a(b"\x50\x00") == b"\x57\xcd"


def test_authenticate_write_and_read_back_a_block(lib: Any, chip: Mfrc522Chip) -> None:
    chip.place(Card(UID4))
    uid = select(lib)
    data = list(range(16))

    status = lib.MFRC522_Auth(lib.PICC_AUTHENT1A, 8, [0xFF] * 6, uid)
    crypto_on = lib.Read_MFRC522(lib.Status2Reg) & 0x08
    lib.MFRC522_Write(8, data)
    block = lib.MFRC522_Read(8)

    assert status == lib.MI_OK
    assert crypto_on
    assert block == data


def test_authentication_with_a_wrong_key_fails(lib: Any, chip: Mfrc522Chip) -> None:
    chip.place(Card(UID4))
    uid = select(lib)

    status = lib.MFRC522_Auth(lib.PICC_AUTHENT1A, 8, [0x00] * 6, uid)

    assert status == lib.MI_ERR
    assert not lib.Read_MFRC522(lib.Status2Reg) & 0x08


def test_an_empty_poll_costs_the_library_over_2000_spi_transfers(lib: Any, chip: Mfrc522Chip):
    chip.reset_counters()

    status, _ = lib.MFRC522_Request(lib.PICC_REQIDL)

    assert status == lib.MI_ERR
    assert chip.spi_transfers > 2000  # the wait loop's bitwise-not bug: TimerIRq is ignored


def test_level_1_anticollision_reads_7_byte_wristbands_as_the_same_id(
    lib: Any, chip: Mfrc522Chip
) -> None:
    seen = []
    for uid in (BAND_A, BAND_B):
        card = chip.place(Card(uid))
        lib.MFRC522_Request(lib.PICC_REQIDL)
        seen.append(lib.MFRC522_Anticoll()[1])
        chip.remove(card)

    assert seen[0] == seen[1] == [0x88, 0x04, 0xA1, 0xB2, 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2]


def test_a_7_byte_card_asks_for_cascade_level_2(lib: Any, chip: Mfrc522Chip) -> None:
    card = chip.place(Card(BAND_A))

    select(lib)

    assert card.state is CardState.READY  # SAK had the cascade bit: level 2 still to do
    assert card.level == 1


def test_a_halted_card_ignores_reqa_but_answers_wupa(lib: Any, chip: Mfrc522Chip) -> None:
    card = chip.place(Card(UID4))
    select(lib)
    lib.MFRC522_ToCard(lib.PCD_TRANSCEIVE, [0x50, 0x00, *lib.CalulateCRC([0x50, 0x00])])

    reqa, _ = lib.MFRC522_Request(lib.PICC_REQIDL)
    wupa, _ = lib.MFRC522_Request(lib.PICC_REQALL)

    assert (reqa, wupa) == (lib.MI_ERR, lib.MI_OK)
    assert card.state is CardState.READY


def test_two_cards_in_the_field_collide(lib: Any, chip: Mfrc522Chip) -> None:
    chip.place(Card(UID4))
    chip.place(Card(bytes.fromhex("DEADBEE0")))

    lib.MFRC522_Request(lib.PICC_REQIDL)
    status, _ = lib.MFRC522_Anticoll()

    assert status == lib.MI_ERR
    assert lib.Read_MFRC522(lib.ErrorReg) & ERR_COLL
    # EF vs E0: bit 0 of the fourth byte (sent least significant bit first) is bit 25
    assert lib.Read_MFRC522(lib.CollReg) & 0x3F == 25


def test_a_removed_card_no_longer_answers(lib: Any, chip: Mfrc522Chip) -> None:
    card = chip.place(Card(UID4))
    chip.remove(card)

    status, _ = lib.MFRC522_Request(lib.PICC_REQIDL)

    assert status == lib.MI_ERR


def test_antenna_off_means_no_answer(lib: Any, chip: Mfrc522Chip) -> None:
    chip.place(Card(UID4))
    lib.AntennaOff()

    status, _ = lib.MFRC522_Request(lib.PICC_REQIDL)

    assert status == lib.MI_ERR


def test_fifo_holds_64_bytes_then_flags_overflow_until_flushed(lib: Any) -> None:
    for value in range(65):
        lib.Write_MFRC522(lib.FIFODataReg, value)
    level, error = lib.Read_MFRC522(lib.FIFOLevelReg), lib.Read_MFRC522(lib.ErrorReg)
    lib.SetBitMask(lib.FIFOLevelReg, 0x80)

    assert (level, error & ERR_BUFFER_OVFL) == (64, ERR_BUFFER_OVFL)
    assert lib.Read_MFRC522(lib.FIFOLevelReg) == 0
    assert not lib.Read_MFRC522(lib.ErrorReg) & ERR_BUFFER_OVFL


def test_burst_read_and_address_byte_checks(lib: Any, mfrc522_rig: Mfrc522Rig) -> None:
    version = 0x80 | (0x37 << 1)

    assert lib.spi.xfer2([version, version, 0]) == [0, 0x92, 0x92]
    with pytest.raises(ValueError, match="bit 0"):
        lib.spi.xfer2([version | 1, 0])
    with pytest.raises(TypeError):
        lib.spi.xfer2([version, -1])


def test_unplugged_reads_zero_and_a_bus_error_raises(lib: Any, chip: Mfrc522Chip) -> None:
    chip.unplugged = True
    unplugged = lib.Read_MFRC522(lib.VersionReg)
    chip.unplugged = False
    chip.bus_error = True

    assert unplugged == 0x00
    with pytest.raises(OSError):
        lib.Read_MFRC522(lib.VersionReg)


def test_plugging_back_in_is_a_power_on_reset(lib: Any, chip: Mfrc522Chip) -> None:
    chip.unplugged = True
    chip.unplugged = False

    assert lib.Read_MFRC522(lib.TModeReg) == 0x00  # the library's init is lost
    assert not chip.antenna_on


def test_the_library_wires_the_reset_pin_and_cleans_up(lib: Any, mfrc522_rig: Mfrc522Rig):
    gpio = mfrc522_rig.gpio

    lib.Close_MFRC522()

    assert ("setmode", gpio.BCM) in gpio.calls
    assert ("output", (25, 1)) in gpio.calls
    assert ("cleanup", None) in gpio.calls  # every pin of the process, not just its own
    assert mfrc522_rig.open_spi_devices == []


def test_the_timer_raises_timer_irq_when_no_card_answers() -> None:
    now = [100.0]
    chip = Mfrc522Rig().add_chip(clock=lambda: now[0])
    write = [
        (0x2A, 0x80), (0x2B, 0xA9), (0x2C, 0x03), (0x2D, 0xE8),  # TAuto, 25 ms
        (0x14, 0x83), (0x0D, 0x07), (0x09, 0x26), (0x01, 0x0C), (0x0D, 0x87),  # REQA
    ]  # fmt: skip
    for reg, value in write:
        chip.spi_transfer([reg << 1, value])

    def irq() -> int:
        return chip.spi_transfer([0x80 | COM_IRQ << 1, 0])[1]

    before = irq()
    now[0] += 0.026

    assert chip.timer_period() == pytest.approx(0.025, rel=0.01)
    assert not before & TIMER_IRQ
    assert irq() & TIMER_IRQ


@pytest.mark.parametrize(
    ("uid", "parts"),
    [
        ("DEADBEEF", ["DEADBEEF"]),
        ("04A1B2C3D4E5F6", ["8804A1B2", "C3D4E5F6"]),
        ("01020304050607080910", ["88010203", "88040506", "07080910"]),
    ],
)
def test_cards_split_their_uid_over_cascade_levels(uid: str, parts: list[str]) -> None:
    card = Card(bytes.fromhex(uid))

    assert [card.cascade(level)[:4].hex().upper() for level in range(card.levels)] == parts
    assert card.atqa[0] >> 6 == len(parts) - 1


@pytest.mark.parametrize("uid", ["DEADBE", "88A1B2C3", "0102038805060708090A"])
def test_cards_refuse_impossible_uids(uid: str) -> None:
    with pytest.raises(ValueError):
        Card(bytes.fromhex(uid))
