"""From the `[drivers]` config to the drivers of the queue's devices: the dispenser's
printer, buttons, indicator and check-in scanner, and the display board's sound output.

Like :mod:`drivers.registry`, plain dicts map config names to factories; a driver that
cannot reach its device raises DriverError and nothing falls back to a simulator.
Hardware libraries (python-escpos, pygame's mixer) are imported inside the factories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.settings import DriversSection
from drivers.printer import TicketPrinter
from drivers.registry import BUTTONS, INDICATORS, make_pin_factory
from drivers.scanner import Scanner
from drivers.sound import SoundOutput


def _sim_printer(cfg: DriversSection) -> TicketPrinter:
    from drivers.printer_sim import SimPrinter

    return SimPrinter(cfg.escpos)


def _escpos_printer(cfg: DriversSection) -> TicketPrinter:
    from drivers.printer_escpos import EscposPrinter

    return EscposPrinter(cfg.escpos)


PRINTERS: dict[str, Callable[[DriversSection], TicketPrinter]] = {
    "sim": _sim_printer,
    "escpos": _escpos_printer,
}


def _sim_scanner(cfg: DriversSection) -> Scanner:
    from drivers.scanner_sim import SimScanner

    return SimScanner()


def _serial_scanner(cfg: DriversSection) -> Scanner:
    from drivers.scanner_serial import SerialScanner

    return SerialScanner(cfg.scanner_serial)


SCANNERS: dict[str, Callable[[DriversSection], Scanner | None]] = {
    "sim": _sim_scanner,
    "serial": _serial_scanner,
    "none": lambda cfg: None,
}


def _sim_sound(cfg: DriversSection) -> SoundOutput:
    from drivers.sound_sim import SimSound

    return SimSound(require_files=False, default_seconds=cfg.sim.clip_seconds)


def _pygame_sound(cfg: DriversSection) -> SoundOutput:
    from drivers.sound_pygame import PygameSound

    return PygameSound()


SOUNDS: dict[str, Callable[[DriversSection], SoundOutput | None]] = {
    "sim": _sim_sound,
    "pygame": _pygame_sound,
    "none": lambda cfg: None,
}


def build_dispenser_drivers(cfg: DriversSection) -> Any:
    """The dispenser's printer, buttons, indicator and scanner (DispenserDrivers)."""
    from controller.dispenser_parts import DispenserDrivers

    if cfg.printer == "none":
        raise ValueError("a dispenser needs a printer")
    uses_gpio = "gpio" in (cfg.buttons, cfg.indicator)
    pins = make_pin_factory(cfg.gpio.pin_factory) if uses_gpio else None
    printer = PRINTERS[cfg.printer](cfg)
    try:
        return DispenserDrivers(
            printer=printer,
            buttons=BUTTONS[cfg.buttons](cfg, pins),
            indicator=INDICATORS[cfg.indicator](cfg, pins),
            scanner=SCANNERS[cfg.scanner](cfg),
        )
    except BaseException:
        printer.close()
        raise


def build_sound(cfg: DriversSection) -> SoundOutput | None:
    return SOUNDS[cfg.sound](cfg)
