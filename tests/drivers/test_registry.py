"""The driver registry: config names to drivers, one pin factory per build, fail-safe close."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from controller.settings import DriversSection
from drivers import registry
from drivers.buttons_gpio import GpioButtons
from drivers.buttons_sim import SimButtons
from drivers.indicator_gpio import GpioIndicator
from drivers.indicator_sim import SimIndicator
from drivers.registry import DriverSet, build_drivers, make_pin_factory
from drivers.relay_gpio import GpioRelay
from drivers.relay_sim import SimRelay
from drivers.rotation_gpio import GpioRotation
from drivers.rotation_sim import SimRotation
from entrada.errors import DriverError

ALL_SIM = {"rfid": "sim", "relay": "sim", "indicator": "sim", "buttons": "sim"}
ALL_GPIO = {
    "rfid": "sim",
    "relay": "gpio",
    "indicator": "gpio",
    "buttons": "gpio",
    "gpio": {"pin_factory": "mock", "buttons": {"open": 5}},
}


class Part:
    """Stands in for any driver: records when it is closed (or stopped) and can fail."""

    name = "fake"

    def __init__(self, label: str, log: list[str], fail: bool = False) -> None:
        self.label, self.log, self.fail = label, log, fail

    def start(self, *callbacks: Any) -> None:
        pass

    def close(self) -> None:
        self.log.append(self.label)
        if self.fail:
            raise DriverError(f"{self.label} would not close")

    stop = close  # an RFID reader stops rather than closes


@pytest.fixture
def readers(monkeypatch) -> list[Part]:
    """Stand-in RFID readers (the registry is a plain dict, so a test can swap an entry)."""
    made: list[Part] = []

    def fake_reader(cfg: DriversSection) -> Part:
        made.append(Part("rfid", []))
        return made[-1]

    monkeypatch.setitem(registry.RFID_READERS, "sim", fake_reader)
    return made


def config(**options: Any) -> DriversSection:
    return DriversSection.model_validate(options)


# --------------------------------------------------------------------------- build


def test_builds_simulators_from_config(readers):
    drivers = build_drivers(config(**ALL_SIM, sim={"buttons": ["open", "exit"]}))

    assert isinstance(drivers.relay, SimRelay)
    assert isinstance(drivers.indicator, SimIndicator)
    assert isinstance(drivers.buttons, SimButtons)
    assert drivers.buttons.names == ("open", "exit")
    assert drivers.rfid is readers[0]
    assert drivers.pin_factory is None
    assert drivers.simulators() == {
        "relay": drivers.relay,
        "rfid": drivers.rfid,
        "buttons": drivers.buttons,
        "indicator": drivers.indicator,
    }
    drivers.close()


def test_rotation_defaults_to_none(readers):
    drivers = build_drivers(config(**ALL_SIM))

    assert drivers.rotation is None
    assert "rotation" not in drivers.simulators()
    drivers.close()


def test_a_simulated_rotation_sensor_is_a_simulator_and_closes(readers):
    drivers = build_drivers(config(**ALL_SIM, rotation="sim"))

    assert isinstance(drivers.rotation, SimRotation)
    assert drivers.rotation.auto_after is None
    assert drivers.simulators()["rotation"] is drivers.rotation
    assert isinstance(drivers.relay, SimRelay) and drivers.relay.on_pulse is None
    drivers.close()
    assert drivers.rotation.closed


def test_auto_rotate_lets_the_simulated_turnstile_hear_the_relay(readers):
    drivers = build_drivers(config(**ALL_SIM, rotation="sim", sim={"auto_rotate": 0.5}))

    assert isinstance(drivers.rotation, SimRotation)
    assert drivers.rotation.auto_after == 0.5
    assert isinstance(drivers.relay, SimRelay)
    assert drivers.relay.on_pulse == drivers.rotation.relay_pulsed
    drivers.close()


def test_a_gpio_rotation_sensor_alone_makes_the_pin_factory(readers):
    drivers = build_drivers(
        config(**ALL_SIM, rotation="gpio", gpio={"pin_factory": "mock", "rotation_pin": 12})
    )

    assert isinstance(drivers.rotation, GpioRotation)
    assert isinstance(drivers.pin_factory, MockFactory)
    assert drivers.pin_factory.pin(12).pull == "up"
    assert "rotation" not in drivers.simulators()
    drivers.close()


def test_a_rotation_pin_clash_is_a_driver_error_and_frees_the_relay(readers, monkeypatch):
    pins = MockFactory()
    relay_pin = pins.pin(17)
    monkeypatch.setattr(registry, "make_pin_factory", lambda name: pins)
    cfg = config(**{**ALL_GPIO, "rotation": "gpio", "gpio": {"rotation_pin": 17}})

    with pytest.raises(DriverError, match="rotation sensor on GPIO17"):
        build_drivers(cfg)

    assert [s.state for s in relay_pin.states] == [False]
    assert relay_pin.function == "input"  # closed


def test_none_leaves_a_part_out(readers):
    drivers = build_drivers(config(rfid="sim", relay="sim", indicator="none", buttons="none"))

    assert drivers.indicator is None
    assert drivers.buttons is None
    assert set(drivers.simulators()) == {"relay", "rfid"}
    drivers.close()


def test_the_real_sim_reader_is_built_when_present():
    pytest.importorskip("drivers.rfid_sim")
    drivers = build_drivers(config(**ALL_SIM))

    assert type(drivers.rfid).__name__ == "SimRfidReader"
    drivers.close()


def test_builds_gpio_drivers_on_the_mock_factory(readers):
    drivers = build_drivers(config(**ALL_GPIO))

    assert isinstance(drivers.pin_factory, MockFactory)
    assert isinstance(drivers.relay, GpioRelay)
    assert isinstance(drivers.indicator, GpioIndicator)
    assert isinstance(drivers.buttons, GpioButtons)
    assert drivers.buttons.names == ("open",)
    relay_pin = drivers.pin_factory.pin(17)
    assert [s.state for s in relay_pin.states] == [False]
    assert set(drivers.simulators()) == {"rfid"}

    drivers.relay.pulse(30)
    drivers.close()

    assert relay_pin.state is False


def test_each_build_has_its_own_pin_factory_and_leaves_the_global_alone(readers):
    before = Device.pin_factory

    first = build_drivers(config(**ALL_GPIO))
    second = build_drivers(config(**ALL_GPIO))  # same pins, no GPIOPinInUse

    assert first.pin_factory is not second.pin_factory
    assert Device.pin_factory is before
    first.close()
    second.close()


def test_an_unavailable_pin_factory_is_a_driver_error(readers, monkeypatch):
    monkeypatch.setitem(sys.modules, "lgpio", None)  # `import lgpio` now fails
    monkeypatch.delitem(sys.modules, "gpiozero.pins.lgpio", raising=False)
    cfg = config(**{**ALL_GPIO, "gpio": {"pin_factory": "lgpio"}})

    with pytest.raises(DriverError, match="'lgpio' is unavailable") as caught:
        build_drivers(cfg)

    assert isinstance(caught.value.__cause__, ImportError)


def test_an_unknown_pin_factory_is_a_driver_error():
    with pytest.raises(DriverError, match="unknown gpio pin factory 'pigpio'"):
        make_pin_factory("pigpio")
    assert make_pin_factory("default") is None  # gpiozero's own choice


def test_all_sim_never_makes_a_pin_factory(readers, monkeypatch):
    monkeypatch.setitem(sys.modules, "lgpio", None)
    monkeypatch.delitem(sys.modules, "gpiozero.pins.lgpio", raising=False)

    drivers = build_drivers(config(**ALL_SIM, gpio={"pin_factory": "lgpio"}))

    assert drivers.pin_factory is None
    drivers.close()


def test_a_missing_reader_module_is_a_driver_error_not_a_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "drivers.rfid_mfrc522", None)

    with pytest.raises(DriverError, match="'mfrc522' is not available"):
        build_drivers(config(rfid="mfrc522", relay="sim", indicator="sim"))


def test_a_failed_build_releases_what_it_built(monkeypatch):
    relay = SimRelay()
    monkeypatch.setitem(registry.RELAYS, "sim", lambda cfg, pins: relay)

    def no_reader(cfg: DriversSection) -> Part:
        raise DriverError("no reader on SPI")

    monkeypatch.setitem(registry.RFID_READERS, "sim", no_reader)

    with pytest.raises(DriverError, match="no reader"):
        build_drivers(config(**ALL_SIM))

    assert relay.closed
    assert relay.releases == 1


def test_a_failed_gpio_build_frees_the_relay_pin(readers, monkeypatch):
    pins = MockFactory()
    relay_pin = pins.pin(17)
    monkeypatch.setattr(registry, "make_pin_factory", lambda name: pins)
    cfg = config(**{**ALL_GPIO, "gpio": {"pin_factory": "mock", "green_pin": 17}})

    with pytest.raises(DriverError, match="green on GPIO17"):
        build_drivers(cfg)

    assert [s.state for s in relay_pin.states] == [False]
    assert relay_pin.function == "input"  # closed


def test_importing_the_registry_touches_no_reader_library():
    code = (
        "import sys, drivers.registry\n"
        "hardware = {'mfrc522', 'spidev', 'RPi', 'lgpio', 'serial', 'drivers.rfid_mfrc522'}\n"
        "loaded = hardware & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


# --------------------------------------------------------------------------- close


def test_close_releases_the_relay_first_then_the_rest_once():
    log: list[str] = []
    drivers = DriverSet(
        rfid=Part("rfid", log),
        relay=Part("relay", log),
        indicator=Part("indicator", log),
        buttons=Part("buttons", log),
    )

    drivers.close()
    drivers.close()

    assert log == ["relay", "rfid", "buttons", "indicator"]


def test_a_failing_close_skips_nothing_and_is_logged(caplog):
    log: list[str] = []
    relay = SimRelay()
    relay.pulse(30)
    drivers = DriverSet(
        rfid=Part("rfid", log, fail=True),
        relay=relay,
        indicator=Part("indicator", log, fail=True),
        buttons=Part("buttons", log, fail=True),
    )

    with caplog.at_level(logging.ERROR, logger="drivers.registry"):
        drivers.close()

    assert not relay.energised
    assert relay.closed
    assert log == ["rfid", "buttons", "indicator"]
    failed = [r.getMessage() for r in caplog.records]
    assert len(failed) == 3
    assert all(r.exc_info for r in caplog.records)


def test_the_rotation_sensor_closes_after_the_buttons_and_before_the_indicator():
    log: list[str] = []
    drivers = DriverSet(
        rfid=Part("rfid", log),
        relay=Part("relay", log),
        indicator=Part("indicator", log),
        buttons=Part("buttons", log),
        rotation=Part("rotation", log),
    )

    drivers.close()

    assert log == ["relay", "rfid", "buttons", "rotation", "indicator"]


def test_a_relay_failing_to_close_still_closes_the_others(caplog):
    log: list[str] = []
    drivers = DriverSet(
        rfid=Part("rfid", log),
        relay=Part("relay", log, fail=True),
        indicator=Part("indicator", log),
        buttons=None,
    )

    with caplog.at_level(logging.ERROR, logger="drivers.registry"):
        drivers.close()

    assert log == ["relay", "rfid", "indicator"]
    assert "relay" in caplog.records[0].getMessage()
