"""Mfrc522Reader against the emulated chip, through the real ``mfrc522`` library code."""

from __future__ import annotations

import importlib.abc
import itertools
import logging
import queue
import sys
from collections.abc import Iterator

import pytest
from mfrc522_emulator import COM_IRQ, Card, Mfrc522Chip
from pi_fakes import Mfrc522Rig

from controller.settings import Mfrc522Section
from drivers.rfid import RfidReader
from drivers.rfid_mfrc522 import Mfrc522Reader
from entrada.errors import DriverError

WAIT = 5.0


class Sink:
    """The callbacks a runtime would pass, recording into queues."""

    def __init__(self) -> None:
        self.uids: queue.Queue[str] = queue.Queue()
        self.health: queue.Queue[tuple[bool, str]] = queue.Queue()

    def on_uid(self, uid: str) -> None:
        self.uids.put(uid)

    def on_health(self, ok: bool, reason: str) -> None:
        self.health.put((ok, reason))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def reader(mfrc522_rig: Mfrc522Rig) -> Iterator[Mfrc522Reader]:
    reader = Mfrc522Reader(Mfrc522Section(poll_interval=0.01))
    reader.retry_initial, reader.retry_max = 0.01, 0.05
    yield reader
    reader.stop()


def wait_polls(chip: Mfrc522Chip, count: int) -> None:
    """Wait until the reader has sent ``count`` more REQA frames."""
    seen = len(chip.requests)
    assert chip.wait_for(lambda: len(chip.requests) >= seen + count, WAIT)


def wait_transfers(chip: Mfrc522Chip, count: int) -> None:
    seen = chip.spi_transfers
    assert chip.wait_for(lambda: chip.spi_transfers >= seen + count, WAIT)


def test_is_an_rfid_reader() -> None:
    assert isinstance(Mfrc522Reader(Mfrc522Section()), RfidReader)


@pytest.mark.parametrize("uid", ["DEADBEEF", "04A1B2C3D4E5F6", "01020304050607080910"])
def test_reads_4_7_and_10_byte_uids_in_full(reader, chip, sink, uid: str) -> None:
    chip.place(Card(bytes.fromhex(uid)))

    reader.start(sink.on_uid, sink.on_health)

    assert sink.uids.get(timeout=WAIT) == uid


def test_wristbands_sharing_their_first_bytes_read_differently(reader, chip, sink) -> None:
    reader.start(sink.on_uid, sink.on_health)
    seen = []
    for uid in ("04A1B2C3D4E5F6", "04A1B2FFEEDDCC"):
        card = chip.place(Card(bytes.fromhex(uid)))
        seen.append(sink.uids.get(timeout=WAIT))
        chip.remove(card)

    assert seen == ["04A1B2C3D4E5F6", "04A1B2FFEEDDCC"]


def test_a_card_held_in_the_field_is_reported_once_per_presentation(reader, chip, sink):
    card = chip.place(Card(bytes.fromhex("04A1B2C3D4E5F6")))
    reader.start(sink.on_uid, sink.on_health)
    first = sink.uids.get(timeout=WAIT)

    wait_polls(chip, 5)  # halted by HLTA: it ignores the next REQAs
    held = sink.uids.qsize()
    chip.remove(card)
    chip.place(card)
    again = sink.uids.get(timeout=WAIT)

    assert (first, held, again) == ("04A1B2C3D4E5F6", 0, "04A1B2C3D4E5F6")


@pytest.mark.parametrize(
    "uids", [("DEADBEEF", "DEADBEE0"), ("04A1B2C3D4E5F6", "04A1B2C3D4E5F7", "CAFEF00D")]
)
def test_cards_held_together_are_each_read_once(reader, chip, sink, uids) -> None:
    for uid in uids:
        chip.place(Card(bytes.fromhex(uid)))

    reader.start(sink.on_uid, sink.on_health)
    seen = {sink.uids.get(timeout=WAIT) for _ in uids}
    wait_polls(chip, 3)

    assert seen == set(uids)
    assert sink.uids.empty()


def test_an_empty_poll_costs_a_few_dozen_transfers_and_sleeps(reader, chip, sink) -> None:
    reader.start(sink.on_uid, sink.on_health)
    wait_polls(chip, 2)
    chip.reset_counters()

    wait_polls(chip, 6)
    marks = [t.at_transfer for t in chip.requests]
    costs = [b - a for a, b in itertools.pairwise(marks)]
    irq_reads_per_poll = chip.reg_reads[COM_IRQ] / len(marks)

    assert max(costs) < 50
    # The chip's timer ends an empty poll after 25 ms; spinning on ComIrqReg meanwhile
    # would read it hundreds of times (the library reads it 2000 times).
    assert irq_reads_per_poll < 12


def test_unplugging_reports_down_once_and_replugging_up_once(reader, chip, sink, caplog):
    caplog.set_level(logging.INFO, logger="drivers.rfid_mfrc522")
    reader.start(sink.on_uid, sink.on_health)
    wait_polls(chip, 1)

    chip.unplugged = True
    down = sink.health.get(timeout=WAIT)
    wait_transfers(chip, 40)  # several attempts to bring it back
    quiet_while_down = sink.health.empty()
    chip.unplugged = False
    up = sink.health.get(timeout=WAIT)
    chip.place(Card(bytes.fromhex("DEADBEEF")))
    uid = sink.uids.get(timeout=WAIT)

    assert down[0] is False and "0x00" in down[1]
    assert quiet_while_down
    assert up == (True, "")
    assert uid == "DEADBEEF"
    levels = [r.levelname for r in caplog.records if "answer" in r.getMessage()]
    assert levels == ["WARNING", "INFO"]


def test_a_bus_error_is_reported_and_recovered_without_leaks(reader, mfrc522_rig, sink):
    chip = mfrc522_rig.chips[(0, 0)]
    reader.start(sink.on_uid, sink.on_health)

    chip.bus_error = True
    down = sink.health.get(timeout=WAIT)
    opened = len(mfrc522_rig.spi_devices)
    assert chip.wait_for(lambda: len(mfrc522_rig.spi_devices) > opened + 3, WAIT)  # retries
    chip.bus_error = False
    up = sink.health.get(timeout=WAIT)

    assert down[0] is False and "I/O" in down[1]
    assert up == (True, "")
    assert len(mfrc522_rig.open_spi_devices) == 1


def test_a_reader_reset_behind_the_drivers_back_is_reinitialised(reader, chip, sink) -> None:
    reader.start(sink.on_uid, sink.on_health)
    wait_polls(chip, 1)

    chip.unplugged = True  # a power glitch: registers back to reset values, antenna off
    chip.unplugged = False
    chip.place(Card(bytes.fromhex("DEADBEEF")))

    assert sink.uids.get(timeout=WAIT) == "DEADBEEF"


def test_stop_releases_spi_and_only_the_reset_pin_and_is_idempotent(reader, mfrc522_rig, sink):
    chip = mfrc522_rig.chips[(0, 0)]
    reader.start(sink.on_uid, sink.on_health)
    wait_polls(chip, 1)

    reader.stop()
    reader.stop()

    assert mfrc522_rig.open_spi_devices == []
    assert not chip.antenna_on
    assert ("cleanup", 25) in mfrc522_rig.gpio.calls
    assert ("cleanup", None) not in mfrc522_rig.gpio.calls  # the relay's pins stay put


def test_the_reset_pin_is_the_configured_bcm_pin(reader, mfrc522_rig, sink) -> None:
    reader.start(sink.on_uid, sink.on_health)

    gpio = mfrc522_rig.gpio
    assert gpio.mode == gpio.BCM
    assert {pin for call, (pin, *_) in _pin_calls(gpio.calls) if call == "setup"} == {25}
    assert ("output", (25, 1)) in gpio.calls


def _pin_calls(calls: list[tuple[str, object]]) -> list[tuple[str, tuple[int, ...]]]:
    return [(c, a) for c, a in calls if isinstance(a, tuple)]  # type: ignore[misc]


def test_no_log_handlers_pile_up_on_the_library_logger(reader, chip, sink) -> None:
    handlers = list(logging.getLogger("mfrc522Logger").handlers)

    for _ in range(2):
        reader.start(sink.on_uid, sink.on_health)
        reader.stop()

    assert logging.getLogger("mfrc522Logger").handlers == handlers


def test_a_failing_uid_callback_does_not_stop_the_reader(reader, chip, sink, caplog) -> None:
    calls: list[str] = []

    def on_uid(uid: str) -> None:
        calls.append(uid)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")
        sink.on_uid(uid)

    card = chip.place(Card(bytes.fromhex("DEADBEEF")))
    reader.start(on_uid, sink.on_health)
    chip.wait_for(lambda: bool(calls), WAIT)
    chip.remove(card)
    chip.place(card)

    assert sink.uids.get(timeout=WAIT) == "DEADBEEF"
    assert "the UID callback failed" in caplog.text


# ------------------------------------------------------------------ start failures


def test_start_without_the_pi_libraries_is_a_driver_error(no_pi_modules, sink) -> None:
    with pytest.raises(DriverError, match="`pi` extra"):
        Mfrc522Reader(Mfrc522Section()).start(sink.on_uid, sink.on_health)


class _OffPi(importlib.abc.MetaPathFinder):
    """What importing RPi.GPIO does on a PC: raise RuntimeError."""

    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name == "RPi.GPIO":
            raise RuntimeError("This module can only be run on a Raspberry Pi!")
        return None


def test_start_off_a_pi_is_a_driver_error(mfrc522_rig, monkeypatch, sink) -> None:
    monkeypatch.delitem(sys.modules, "RPi.GPIO")
    monkeypatch.setattr(sys, "meta_path", [_OffPi(), *sys.meta_path])

    with pytest.raises(DriverError, match="only be run on a Raspberry Pi"):
        Mfrc522Reader(Mfrc522Section()).start(sink.on_uid, sink.on_health)


def test_start_with_a_silent_reader_is_a_driver_error(reader, mfrc522_rig, sink) -> None:
    mfrc522_rig.chips[(0, 0)].unplugged = True

    with pytest.raises(DriverError, match="VersionReg reads 0x00"):
        reader.start(sink.on_uid, sink.on_health)
    assert mfrc522_rig.open_spi_devices == []


def test_start_without_the_spi_device_is_a_driver_error(mfrc522_rig, sink) -> None:
    with pytest.raises(DriverError, match="cannot open"):
        Mfrc522Reader(Mfrc522Section(device=1)).start(sink.on_uid, sink.on_health)


def test_start_refuses_board_pin_numbering(reader, mfrc522_rig, sink) -> None:
    mfrc522_rig.gpio.setmode(mfrc522_rig.gpio.BOARD)

    with pytest.raises(DriverError, match="BOARD"):
        reader.start(sink.on_uid, sink.on_health)
