"""Fixtures that swap the hardware under the drivers for simulators.

``mfrc522_rig`` puts fake ``spidev`` and ``RPi.GPIO`` modules into ``sys.modules``, wired
to the register-level emulator in `tests/drivers/mfrc522_emulator.py` (through
`pi_fakes.py`), so the real ``mfrc522`` library runs against it. Everything is undone
after the test, including the ``mfrc522`` modules imported against the fakes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from mfrc522_emulator import Mfrc522Chip
from pi_fakes import Mfrc522Rig

_FAKED = ("spidev", "RPi", "RPi.GPIO")


def _forget_mfrc522(monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    for name in [n for n in sys.modules if n == "mfrc522" or n.startswith("mfrc522.")]:
        if monkeypatch is None:
            del sys.modules[name]
        else:
            monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def mfrc522_rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mfrc522Rig]:
    """A Pi with one MFRC522 on SPI bus 0, device 0, its reset line on BCM 25."""
    rig = Mfrc522Rig()
    rig.add_chip(bus=0, device=0, reset_pin=25)
    monkeypatch.setitem(sys.modules, "spidev", rig.spidev)
    monkeypatch.setitem(sys.modules, "RPi", rig.rpi_package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", rig.gpio_module)
    _forget_mfrc522(monkeypatch)  # import it afresh, against the fakes
    yield rig
    _forget_mfrc522()


@pytest.fixture
def chip(mfrc522_rig: Mfrc522Rig) -> Mfrc522Chip:
    return mfrc522_rig.chips[(0, 0)]


@pytest.fixture
def no_pi_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither ``spidev``, ``RPi.GPIO`` nor ``mfrc522`` importable: a PC without the extra."""
    for name in (*_FAKED, "mfrc522", "mfrc522.MFRC522", "mfrc522.SimpleMFRC522"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def mock_factory() -> Iterator[object]:
    """gpiozero's MockFactory as the pin factory, restored afterwards."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    factory.close()
    Device.pin_factory = previous
