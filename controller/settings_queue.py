"""Config sections of the queue's devices: the ticket dispenser and the display board."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator

from entrada.config import Section, option

_SERVICE_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
LANGUAGES = Literal["en", "pl", "cs", "uk"]


class DispenserSection(Section):
    """Ticket dispenser: which button issues which service, how tickets look, and its
    touch screen."""

    site_name: str = option("", "Printed at the top of every ticket.")
    buttons: dict[str, str] = option(
        {},
        'Button name to the service it issues, e.g. {b1 = "A", b2 = "B"}: one mapping for '
        "the push buttons (`drivers.gpio.buttons`, `drivers.sim.buttons`) and the touch "
        'screen. With `screen = "touch"` every entry is also a button on the screen, in this '
        "order, and touching it is a press of that name; the screen may be the only input "
        '(`drivers.buttons = "none"`).',
    )
    priority_buttons: list[str] = option(
        [], "Buttons that issue priority tickets (the policy may call them sooner)."
    )
    language: LANGUAGES = option(
        "en", "Language of the words printed on tickets and shown on the touch screen."
    )
    timezone: str = option(
        "UTC",
        "Site time zone of the date and time on tickets (as central's `[queue] timezone`).",
    )
    status_url: str = option(
        "",
        "QR code target, `{ticket}` replaced by the ticket id (e.g. "
        "`https://queue.example.org/t/{ticket}`); empty: no QR code.",
    )
    request_timeout: float = option(
        0.8,
        "Wait this long for central's number before issuing from a leased block instead.",
        unit="s",
        ge=0.05,
        le=10,
    )
    lease_size: int = option(
        50,
        "Numbers per leased block, per service: enough for the longest outage expected.",
        ge=1,
        le=1000,
    )
    lease_low: int = option(
        20,
        "Ask for another block when fewer unused leased numbers than this are left.",
        ge=0,
        le=1000,
    )
    lease_ahead: float = option(
        6 * 3600.0,
        "Lease the next business day's numbers this long before the day changes.",
        unit="s",
        ge=0,
        le=86400,
    )
    screen: Literal["none", "touch"] = option(
        "none",
        "`touch`: a touch screen with one button per entry of `dispenser.buttons`, the "
        "outcome of the last press and the printer's faults (pygame on the main thread); "
        "`none`: push buttons only.",
    )
    orientation: Literal["portrait", "landscape", "small"] = option(
        "portrait",
        'The touch screen: 1080x1920 portrait, 1920x1080 landscape or 800x480 "small".',
    )
    fullscreen: bool = option(
        True, "The touch screen fills the display, no pointer (off: a window, for a desk test)."
    )
    video_driver: str = option(
        "",
        "SDL video driver of the touch screen (`kmsdrm` on a Pi without a desktop, `x11`, "
        "`dummy` for tests); empty: SDL's choice.",
    )
    fps: int = option(
        20,
        "Passes per second of the touch screen's loop: it looks for touches this often and "
        "draws a frame only when what it shows changed.",
        ge=1,
        le=60,
    )

    @model_validator(mode="after")
    def _services_are_ids(self) -> DispenserSection:
        import re

        bad = [s for s in self.buttons.values() if not re.fullmatch(_SERVICE_ID, s)]
        if bad:
            raise ValueError(f"dispenser.buttons: invalid service ids {bad}")
        unknown = [b for b in self.priority_buttons if b not in self.buttons]
        if unknown:
            raise ValueError(f"dispenser.priority_buttons not in dispenser.buttons: {unknown}")
        return self


class DisplaySection(Section):
    """Display board: its screen, words and announcements."""

    orientation: Literal["landscape", "portrait"] = option(
        "landscape", "1920x1080 landscape or 1080x1920 portrait."
    )
    fullscreen: bool = option(True, "Full screen (off: a window, for a desk test).")
    video_driver: str = option(
        "",
        "SDL video driver (`kmsdrm` on a Pi without a desktop, `x11`, `dummy` for tests); "
        "empty: SDL's choice.",
    )
    language: LANGUAGES = option("en", "Language of the board's words and announcements.")
    timezone: str = option("UTC", "Site time zone for the clock (as central's `[queue] timezone`).")
    recent: int = option(
        6, "Last calls shown at most (central sends `[queue] recent_calls`).", ge=0, le=50
    )
    highlight_seconds: float = option(
        10.0, "A new call stands out this long.", unit="s", ge=0, le=300
    )
    ticker: str = option("", "Default ticker line (central's board ticker wins).")
    clips_dir: Path = option(
        Path("/var/lib/entrada/voice"),
        "Spoken clips and chime, prepared at install time (scripts/prepare-voice.sh).",
        lax=True,
    )
    announce: bool = option(True, "Chime and speak each call.")
    announce_gap: float = option(0.6, "Silence between two announcements.", unit="s", ge=0, le=10)
    fps: int = option(20, "Frames drawn per second.", ge=1, le=60)
