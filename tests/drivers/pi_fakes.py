"""Fake ``spidev`` and ``RPi.GPIO`` modules wired to emulated MFRC522 chips: a Pi on a
test bench. :class:`Mfrc522Rig` gives module objects to put in ``sys.modules`` so the real
``mfrc522`` library, and our driver on it, run unchanged off a Pi (tests/drivers/conftest.py).
"""

from __future__ import annotations

import errno
import time
import types
from collections.abc import Callable

from mfrc522_emulator import Mfrc522Chip

# -- fake spidev and RPi.GPIO ------------------------------------------------------------

# 40-pin header: physical (BOARD) pin -> BCM number, for the pins a reader may use.
BOARD_TO_BCM = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
    21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19, 36: 16,
    37: 26, 38: 20, 40: 21,
}  # fmt: skip


class FakeSpiDev:
    """Stands in for ``spidev.SpiDev``: open(bus, device), xfer2, close."""

    def __init__(self, rig: Mfrc522Rig) -> None:
        self._rig = rig
        self.chip: Mfrc522Chip | None = None
        self.bus_device: tuple[int, int] | None = None
        self.max_speed_hz = 0
        self.mode = 0
        self.closed = False
        rig.spi_devices.append(self)

    def open(self, bus: int, device: int) -> None:
        chip = self._rig.chips.get((bus, device))
        if chip is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        self.chip, self.bus_device, self.closed = chip, (bus, device), False

    def xfer2(self, values: list[int]) -> list[int]:
        if self.chip is None or self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")
        values = list(values)
        if not values or any(not isinstance(v, int) or not 0 <= v <= 0xFF for v in values):
            raise TypeError(f"xfer2 takes a list of byte values, not {values!r}")
        return self.chip.spi_transfer(values)

    def close(self) -> None:
        self.closed = True


class FakeGpio:
    """Stands in for ``RPi.GPIO``: pin numbering, outputs and the chips' reset lines.

    A pin that is not driven (never set up, or cleaned up) reads high: reader modules pull
    their reset line up, so the chip runs until someone drives the pin low.
    """

    BCM, BOARD, OUT, IN, HIGH, LOW = 11, 10, 0, 1, 1, 0
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22

    def __init__(self, rig: Mfrc522Rig) -> None:
        self._rig = rig
        self.mode: int | None = None
        self.warnings = True
        self.directions: dict[int, int] = {}  # BCM pin -> OUT/IN
        self.levels: dict[int, int] = {}  # BCM pin -> level driven
        self.calls: list[tuple[str, object]] = []

    def _bcm(self, channel: int) -> int:
        if self.mode is None:
            raise RuntimeError(
                "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or "
                "GPIO.setmode(GPIO.BCM)"
            )
        if self.mode == self.BOARD:
            if channel not in BOARD_TO_BCM:
                raise ValueError("The channel sent is invalid on a Raspberry Pi")
            return BOARD_TO_BCM[channel]
        if not 0 <= channel <= 27:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return channel

    def setmode(self, mode: int) -> None:
        self.calls.append(("setmode", mode))
        if mode not in (self.BCM, self.BOARD):
            raise ValueError("An invalid mode was passed to setmode()")
        if self.mode is not None and mode != self.mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode

    def getmode(self) -> int | None:
        return self.mode

    def setwarnings(self, flag: bool) -> None:
        self.warnings = bool(flag)

    def setup(
        self, channel: int | list[int], direction: int, pull_up_down: int = 20, initial: int = -1
    ) -> None:
        for ch in channel if isinstance(channel, list) else [channel]:
            pin = self._bcm(ch)
            self.calls.append(("setup", (pin, direction)))
            self.directions[pin] = direction
            if direction == self.OUT:
                self._drive(pin, initial if initial != -1 else self.levels.get(pin, self.LOW))
            else:
                self._release(pin)

    def output(self, channel: int, value: int) -> None:
        pin = self._bcm(channel)
        self.calls.append(("output", (pin, int(bool(value)))))
        if self.directions.get(pin) != self.OUT:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        self._drive(pin, int(bool(value)))

    def input(self, channel: int) -> int:
        return self.levels.get(self._bcm(channel), self.HIGH)

    def cleanup(self, channel: int | list[int] | None = None) -> None:
        self.calls.append(("cleanup", channel))
        if channel is None:
            pins = list(self.directions)
        else:
            pins = [self._bcm(ch) for ch in (channel if isinstance(channel, list) else [channel])]
        for pin in pins:
            self.directions.pop(pin, None)
            self._release(pin)
        if channel is None:
            self.mode = None

    def _drive(self, pin: int, level: int) -> None:
        self.levels[pin] = level
        self._rig.reset_line(pin, bool(level))

    def _release(self, pin: int) -> None:
        self.levels.pop(pin, None)
        self._rig.reset_line(pin, True)


class Mfrc522Rig:
    """A Pi with MFRC522 chips on its SPI buses, each reset line wired to a BCM pin.

    ``rig.spidev`` and ``rig.gpio_module`` are module objects to put in ``sys.modules``
    as ``spidev`` and ``RPi.GPIO`` (see tests/drivers/conftest.py).
    """

    def __init__(self) -> None:
        self.chips: dict[tuple[int, int], Mfrc522Chip] = {}
        self.reset_pins: dict[int, Mfrc522Chip] = {}
        self.spi_devices: list[FakeSpiDev] = []
        self.gpio = FakeGpio(self)
        self.spidev = types.ModuleType("spidev")
        self.spidev.SpiDev = lambda: FakeSpiDev(self)  # type: ignore[attr-defined]
        self.gpio_module = types.ModuleType("RPi.GPIO")
        for name in ("BCM", "BOARD", "OUT", "IN", "HIGH", "LOW", "PUD_OFF", "PUD_DOWN", "PUD_UP"):
            setattr(self.gpio_module, name, getattr(FakeGpio, name))
        for name in ("setmode", "getmode", "setwarnings", "setup", "output", "input", "cleanup"):
            setattr(self.gpio_module, name, getattr(self.gpio, name))
        self.rpi_package = types.ModuleType("RPi")
        self.rpi_package.__path__ = []  # type: ignore[attr-defined]
        self.rpi_package.GPIO = self.gpio_module  # type: ignore[attr-defined]

    def add_chip(
        self,
        bus: int = 0,
        device: int = 0,
        reset_pin: int = 25,
        version: int = 0x92,
        clock: Callable[[], float] = time.monotonic,
    ) -> Mfrc522Chip:
        chip = Mfrc522Chip(version, clock)
        self.chips[(bus, device)] = chip
        self.reset_pins[reset_pin] = chip
        return chip

    def reset_line(self, pin: int, high: bool) -> None:
        chip = self.reset_pins.get(pin)
        if chip is not None:
            chip.set_reset_line(high)

    @property
    def open_spi_devices(self) -> list[FakeSpiDev]:
        return [d for d in self.spi_devices if d.chip is not None and not d.closed]
