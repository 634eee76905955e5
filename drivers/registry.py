"""From the `[drivers]` config to live drivers: plain dicts from config names to factories.

:func:`build_drivers` makes the gpiozero pin factory once per build (when any GPIO driver is
chosen) and hands it to each GPIO device, so there is no module-global pin state. Readers
that import hardware libraries (mfrc522 pulls in RPi.GPIO) are imported inside their
factory, so importing this module, or running all-sim, never touches hardware. A driver
that cannot reach its device raises DriverError; nothing falls back to a simulator.

With ``[drivers.sim] auto_rotate`` the simulated relay is connected to the simulated
rotation sensor (``SimRelay.on_pulse`` -> ``SimRotation.relay_pulsed``), so the simulated
turnstile turns by itself after each pulse; the config refuses auto_rotate unless both are
simulated.

:meth:`DriverSet.close` is the fail-safe shutdown: the relay is released first and every
step runs in its own try, so one failing driver never leaves the turnstile energised.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.settings import DriversSection
from drivers.buttons import Buttons
from drivers.buttons_gpio import GpioButtons
from drivers.buttons_sim import SimButtons
from drivers.indicator_gpio import GpioIndicator
from drivers.indicator_sim import SimIndicator
from drivers.outputs import Indicator, Relay
from drivers.relay_gpio import GpioRelay
from drivers.relay_sim import SimRelay
from drivers.rfid import RfidReader
from drivers.rotation import RotationSensor
from drivers.rotation_gpio import GpioRotation
from drivers.rotation_sim import SimRotation
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

#: gpiozero pin factory name (config ``gpio.pin_factory``) -> (module, class). ``default``
#: is absent on purpose: it leaves the choice to gpiozero.
PIN_FACTORIES: dict[str, tuple[str, str]] = {
    "mock": ("gpiozero.pins.mock", "MockFactory"),
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


def make_pin_factory(name: str) -> Any:
    """A new gpiozero pin factory for ``name``, or None for ``default`` (gpiozero's choice)."""
    if name == "default":
        return None
    try:
        module_name, class_name = PIN_FACTORIES[name]
    except KeyError:
        raise DriverError(
            f"unknown gpio pin factory {name!r}; choose one of default, {', '.join(PIN_FACTORIES)}"
        ) from None
    try:
        return getattr(importlib.import_module(module_name), class_name)()
    # A missing library (ImportError), no Pi (PinUnknownPi), no /dev/gpiochip (lgpio.error,
    # OSError): every failure means the same to the operator.
    except Exception as err:
        raise DriverError(
            f"gpio pin factory {name!r} is unavailable here ({type(err).__name__}: {err}); "
            "on a Pi 5 only 'lgpio' works, and off a Pi choose the sim drivers"
        ) from err


# ------------------------------------------------------------------------ factories
# Each takes the whole [drivers] section; GPIO ones also take the build's pin factory.


def _sim_rfid(cfg: DriversSection) -> RfidReader:
    from drivers.rfid_sim import SimRfidReader

    return SimRfidReader(name="sim")


def _mfrc522_rfid(cfg: DriversSection) -> RfidReader:
    from drivers.rfid_mfrc522 import Mfrc522Reader

    return Mfrc522Reader(cfg.mfrc522)


def _serial_rfid(cfg: DriversSection) -> RfidReader:
    from drivers.rfid_serial import SerialRfidReader

    return SerialRfidReader(cfg.serial)


RFID_READERS: dict[str, Callable[[DriversSection], RfidReader]] = {
    "sim": _sim_rfid,
    "mfrc522": _mfrc522_rfid,
    "serial": _serial_rfid,
}

RELAYS: dict[str, Callable[[DriversSection, Any], Relay]] = {
    "sim": lambda cfg, pins: SimRelay(),
    "gpio": lambda cfg, pins: GpioRelay(cfg.gpio, pin_factory=pins),
}

INDICATORS: dict[str, Callable[[DriversSection, Any], Indicator | None]] = {
    "sim": lambda cfg, pins: SimIndicator(),
    "gpio": lambda cfg, pins: GpioIndicator(cfg.gpio, pin_factory=pins),
    "none": lambda cfg, pins: None,
}

BUTTONS: dict[str, Callable[[DriversSection, Any], Buttons | None]] = {
    "sim": lambda cfg, pins: SimButtons(cfg.sim.buttons),
    "gpio": lambda cfg, pins: GpioButtons(cfg.gpio, pin_factory=pins),
    "none": lambda cfg, pins: None,
}

ROTATION_SENSORS: dict[str, Callable[[DriversSection, Any], RotationSensor | None]] = {
    "sim": lambda cfg, pins: SimRotation(auto_after=cfg.sim.auto_rotate),
    "gpio": lambda cfg, pins: GpioRotation(cfg.gpio, pin_factory=pins),
    "none": lambda cfg, pins: None,
}

#: The parts of a DriverSet, in the order :meth:`DriverSet.close` shuts them down.
PARTS = ("relay", "rfid", "buttons", "rotation", "indicator")


@dataclass
class DriverSet:
    """The drivers of one device, built from its config."""

    rfid: RfidReader
    relay: Relay
    indicator: Indicator | None = None
    buttons: Buttons | None = None
    #: The turnstile's rotation sensor; None: a grant is a passage at once.
    rotation: RotationSensor | None = None
    #: The gpiozero pin factory made for this build (None: all-sim, or gpiozero's default).
    pin_factory: Any = None
    #: Names of the parts the config asked to simulate.
    simulated: frozenset[str] = frozenset()
    _closed: bool = field(default=False, init=False, repr=False)

    def simulators(self) -> dict[str, Any]:
        """The simulated drivers present, keyed by part ("rfid", "relay", "rotation"...)."""
        return {
            part: getattr(self, part)
            for part in PARTS
            if part in self.simulated and getattr(self, part) is not None
        }

    def close(self) -> None:
        """Release the relay, then stop every other driver, each in its own try."""
        if self._closed:
            return
        self._closed = True
        _shut_down({part: getattr(self, part) for part in PARTS}, self.pin_factory)


def _shut_down(parts: dict[str, Any], pin_factory: Any) -> None:
    """Close ``parts`` in PARTS order, then the pin factory; log failures and go on."""
    for part in PARTS:
        driver = parts.get(part)
        if driver is None:
            continue
        try:
            if part == "rfid":
                driver.stop()
            else:
                driver.close()
        except Exception:  # fail-safe: log it and keep shutting the others down
            logger.exception("closing the %s driver (%s) failed", part, type(driver).__name__)
    if pin_factory is not None:
        try:
            pin_factory.close()
        except Exception:  # as above
            logger.exception("closing the gpio pin factory failed")


def _connect_auto_rotate(built: dict[str, Any]) -> None:
    """Let a simulated turnstile with ``auto_after`` hear the simulated relay's pulses."""
    rotation, relay = built.get("rotation"), built.get("relay")
    if isinstance(rotation, SimRotation) and rotation.auto_after is not None:
        if not isinstance(relay, SimRelay):  # the config refuses this; a hand-made cfg may not
            raise DriverError("drivers.sim.auto_rotate needs a simulated relay")
        relay.on_pulse = rotation.relay_pulsed


def build_drivers(cfg: DriversSection) -> DriverSet:
    """Build every driver ``cfg`` names; on failure close those already built and raise."""
    choices = {
        "rfid": cfg.rfid,
        "relay": cfg.relay,
        "indicator": cfg.indicator,
        "buttons": cfg.buttons,
        "rotation": cfg.rotation,
    }
    pins = make_pin_factory(cfg.gpio.pin_factory) if "gpio" in choices.values() else None
    built: dict[str, Any] = {}
    try:
        built["relay"] = RELAYS[cfg.relay](cfg, pins)
        built["indicator"] = INDICATORS[cfg.indicator](cfg, pins)
        built["buttons"] = BUTTONS[cfg.buttons](cfg, pins)
        built["rotation"] = ROTATION_SENSORS[cfg.rotation](cfg, pins)
        _connect_auto_rotate(built)
        try:
            built["rfid"] = RFID_READERS[cfg.rfid](cfg)
        except ImportError as err:
            raise DriverError(f"rfid driver {cfg.rfid!r} is not available: {err}") from err
    except BaseException:
        _shut_down(built, pins)  # relay released, pins freed, then the original error
        raise
    logger.info("drivers: %s", ", ".join(f"{part}={name}" for part, name in choices.items()))
    return DriverSet(
        **built,
        pin_factory=pins,
        simulated=frozenset(part for part, name in choices.items() if name == "sim"),
    )
