"""The device daemon's declared config schema (docs/config.md is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator

from controller.settings_printer import PrinterSection
from controller.settings_queue import DispenserSection, DisplaySection
from entrada.config import Section, option, section
from entrada.protocol import ID_PATTERN
from entrada.settings_common import SITE_ID, LogSection, MqttSection, SimTimeSection


class DeviceSection(Section):
    """Who this device is."""

    id: str = option(..., "Device id; also its MQTT client id and username.", pattern=ID_PATTERN)
    site: str = SITE_ID
    role: Literal["gate", "dispenser", "display"] = option(
        ...,
        "What the device does: a turnstile `gate`, a ticket `dispenser`, a `display` board.",
    )
    data_dir: Path = option(
        Path("/var/lib/entrada"),
        "Folder for the device database (catalog, outbox, state).",
        lax=True,
    )
    run_dir: Path = option(
        Path("/run/entrada"), "Folder for runtime sockets (the simulator channel).", lax=True
    )
    clock: Literal["system", "sim"] = option(
        "system",
        "`sim`: wall time can be moved with `entrada sim clock` (tests, the demo's simulated "
        "day); never on a real gate.",
    )
    config_key: Path | None = option(
        None,
        "The site's config-signing public key (`site_signing.pub`, PEM): desired configs from "
        "central must be signed with its private half. Unset: every desired config is refused "
        "(`config.rejected.no_key`).",
        lax=True,
        example="/etc/entrada/site_signing.pub",
    )


class OutboxSection(Section):
    """How events travel to central: batched, bounded in flight, re-sent until acknowledged."""

    batch_size: int = option(200, "Most events in one published batch.", ge=1, le=1000)
    max_inflight: int = option(
        2000, "Most events published and not yet acknowledged.", ge=1, le=100000
    )
    ack_timeout: float = option(
        3.0, "Re-send events not acknowledged within this time.", unit="s", ge=0.2, le=600
    )
    backoff_max: float = option(
        30.0, "Longest wait between re-sends of the same events.", unit="s", ge=1, le=3600
    )


class GateSection(Section):
    """Turnstile behaviour."""

    direction: Literal["in", "out"] = option(
        "in", "Entry (towards an inner zone) or exit (towards an outer zone or outside)."
    )
    admission: Literal["tariffs", "media"] = option(
        "media",
        "`tariffs`: the rules engine decides from the site's published rules, the "
        "wristband's entitlements, its passages and its open tab (a gate refuses everyone "
        "while no rules are published). `media`: only the wristband's own status and "
        "validity count (an office door, a staff entrance).",
    )
    zone_from: str = option(
        "",
        "Zone the gate lets people out of (an exit) or that they come from (an entry); "
        "empty: the outside. A zone id of the site's rules.",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$",
    )
    zone_to: str = option(
        "",
        "Zone the gate lets people into (an entry) or out to (an exit); empty: the outside.",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$",
    )
    collects_media: bool = option(
        False, "An exit that swallows the wristband: its deposit pays what is owed."
    )
    relay_pulse: float = option(
        1.0, "How long the relay is energised on a grant.", unit="s", ge=0.05, le=30
    )
    debounce: float = option(
        2.0, "A UID read again within this time is the same tap.", unit="s", ge=0, le=60
    )
    rotation_timeout: float = option(
        8.0,
        "With a rotation sensor: a grant not followed by a rotation within this time is "
        "annulled (not counted as an entry).",
        unit="s",
        ge=0.1,
        le=300,
    )


class PresenceSection(Section):
    """Passages shared between the gates of a site through the broker, so anti-passback,
    entry counters and zone occupancy hold across gates while central is away."""

    share: bool = option(True, "Publish this gate's passages and take in its peers'.")
    resend_window: float = option(
        86400.0,
        "After a reconnect, share again the passages recorded this long back (peers ignore "
        "the ones they have).",
        unit="s",
        ge=0,
        le=7 * 86400,
    )
    occupancy_ttl: float = option(
        16 * 3600.0,
        "A wristband not seen at any gate for this long no longer counts as inside.",
        unit="s",
        ge=60,
        le=7 * 86400,
    )


class Mfrc522Section(Section):
    """MFRC522 reader on SPI (Raspberry Pi)."""

    bus: int = option(0, "SPI bus.", ge=0, le=6)
    device: int = option(0, "SPI chip select.", ge=0, le=2)
    reset_pin: int = option(25, "Reset pin, BCM numbering (never BCM 15: UART RX).", ge=0, le=27)
    spi_speed_hz: int = option(1_000_000, "SPI clock.", unit="Hz", ge=10_000, le=10_000_000)
    poll_interval: float = option(0.1, "Pause between card polls.", unit="s", ge=0.01, le=2)


class SerialReaderSection(Section):
    """125 kHz reader sending STX, 10 hex digits, 2 hex checksum, ETX."""

    port: str = option("/dev/ttyS0", "Serial device or pyserial URL.")
    baudrate: int = option(9600, "Baud rate.", unit="baud", ge=1200, le=921600)


class SerialScannerSection(Section):
    """Barcode/QR scanner in serial mode (RS-232 or USB CDC-ACM), sending one line per scan
    ended by CR, LF or CR LF."""

    port: str = option("/dev/ttyACM0", "Serial device or pyserial URL.")
    baudrate: int = option(9600, "Baud rate.", unit="baud", ge=1200, le=921600)


class GpioSection(Section):
    """Pins (BCM numbering) for the relay, indicator, buttons and rotation sensor."""

    pin_factory: Literal["default", "lgpio", "rpigpio", "native", "mock"] = option(
        "default", "gpiozero pin factory; `mock` only for bench tests off a Pi."
    )
    relay_pin: int = option(17, "Turnstile relay.", ge=0, le=27)
    relay_active_high: bool = option(True, "Relay energised by a high level.")
    green_pin: int | None = option(27, "Green LED (unset: none).", ge=0, le=27)
    red_pin: int | None = option(22, "Red LED (unset: none).", ge=0, le=27)
    buzzer_pin: int | None = option(23, "Buzzer (unset: none).", ge=0, le=27)
    buttons: dict[str, int] = option({}, "Button name to pin, e.g. {open = 5}.")
    button_bounce: float = option(0.05, "Button debounce.", unit="s", ge=0, le=1)
    rotation_pin: int = option(24, "Turnstile rotation sensor (one pulse per turn).", ge=0, le=27)
    rotation_pull_up: bool = option(
        True, "Sensor pulls the pin to ground when it fires (contact or NPN output)."
    )
    rotation_bounce: float = option(
        0.2,
        "Edges within this time of the last accepted one are the same turn.",
        unit="s",
        ge=0,
        le=2,
    )


class SimSection(Section):
    """Simulated drivers, driven with `entrada sim ...`."""

    buttons: list[str] = option(["open"], "Names of simulated buttons.")
    clip_seconds: float = option(
        0.5, "How long each clip 'plays' on the simulated sound output.", unit="s", ge=0, le=10
    )
    auto_rotate: float | None = option(
        None,
        "The simulated turnstile turns by itself this long after each relay pulse (a visitor "
        "walking through); unset: only `entrada sim rotate`. Needs relay and rotation `sim`.",
        unit="s",
        ge=0,
        le=60,
    )


class DriversSection(Section):
    """Which implementation drives each part. `sim` must be chosen here: it is never a
    fallback for missing hardware."""

    rfid: Literal["sim", "mfrc522", "serial", "none"] = option(
        "none", "Credential reader (a gate needs one)."
    )
    relay: Literal["sim", "gpio", "none"] = option("none", "Turnstile relay (a gate needs one).")
    indicator: Literal["sim", "gpio", "none"] = option("none", "LEDs and buzzer.")
    printer: Literal["sim", "escpos", "none"] = option(
        "none", "Ticket printer (a dispenser needs one): `escpos` settings in `[drivers.escpos]`."
    )
    sound: Literal["sim", "pygame", "none"] = option(
        "none", "Chime and announcements (a display board); `sim` records what was played."
    )
    buttons: Literal["sim", "gpio", "none"] = option("none", "Push buttons.")
    rotation: Literal["sim", "gpio", "none"] = option(
        "none",
        "Turnstile rotation sensor. With one, a grant counts only once the turnstile turns; "
        "`none`: a grant is a passage at once.",
    )
    scanner: Literal["sim", "serial", "none"] = option(
        "none",
        "Barcode/QR scanner of a dispenser: an appointment's check-in code scanned there "
        "gives its ticket (`serial` settings in `[drivers.scanner_serial]`).",
    )
    escpos: PrinterSection = section(PrinterSection)
    mfrc522: Mfrc522Section = section(Mfrc522Section)
    serial: SerialReaderSection = section(SerialReaderSection)
    scanner_serial: SerialScannerSection = section(SerialScannerSection)
    gpio: GpioSection = section(GpioSection)
    sim: SimSection = section(SimSection)

    @model_validator(mode="after")
    def _auto_rotate_needs_sims(self) -> DriversSection:
        if self.sim.auto_rotate is not None and (self.rotation, self.relay) != ("sim", "sim"):
            raise ValueError(
                'drivers.sim.auto_rotate needs rotation = "sim" and relay = "sim" (the '
                "simulated turnstile turns when the simulated relay pulses)"
            )
        return self


class DeviceConfig(Section):
    """The whole device config file."""

    @model_validator(mode="after")
    def _role_has_its_drivers(self) -> DeviceConfig:
        drivers, role = self.drivers, self.device.role
        needs = {
            "gate": ("rfid", "relay"),
            "dispenser": ("printer",),
            "display": (),
        }[role]
        missing = [part for part in needs if getattr(drivers, part) == "none"]
        if missing:
            raise ValueError(
                f"a {role} needs drivers.{' and drivers.'.join(missing)} (`sim` to simulate)"
            )
        if role == "dispenser" and not self.dispenser.buttons:
            raise ValueError("a dispenser needs dispenser.buttons (button name -> service)")
        return self

    @model_validator(mode="after")
    def _gate_between_zones(self) -> DeviceConfig:
        gate = self.gate
        if self.device.role != "gate" or gate.admission != "tariffs":
            return self
        inner = gate.zone_to if gate.direction == "in" else gate.zone_from
        if not inner:
            side = "zone_to" if gate.direction == "in" else "zone_from"
            raise ValueError(
                f"gate.{side} must name a zone: an {gate.direction!r} gate with tariff "
                "admission goes into (or out of) a zone of the site's rules"
            )
        if gate.zone_from == gate.zone_to:
            raise ValueError("gate.zone_from and gate.zone_to must differ")
        return self

    device: DeviceSection
    mqtt: MqttSection = section(MqttSection)
    outbox: OutboxSection = section(OutboxSection)
    gate: GateSection = section(GateSection)
    presence: PresenceSection = section(PresenceSection)
    dispenser: DispenserSection = section(DispenserSection)
    display: DisplaySection = section(DisplaySection)
    drivers: DriversSection
    simtime: SimTimeSection = section(SimTimeSection)
    log: LogSection = section(LogSection)
