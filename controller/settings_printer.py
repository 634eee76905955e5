"""Config of an ESC/POS ticket printer (``[drivers.escpos]``), checked against escpos's
printer profiles.

A profile (python-escpos's capabilities database) says how wide the paper is in dots, which
code pages the printer has and whether it draws QR codes itself (``GS ( k``). The ticket is
centred on that width, and escpos prints to stdout when it has none, so a profile without
a width needs ``paper_width``. The database is read here as plain JSON, without importing
escpos (whose import has side effects: see :mod:`drivers.ticket_escpos`).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from entrada.config import Section, option

#: Widest printable line of any roll printer we expect (112 mm at 203 dpi).
MAX_PAPER_PX = 832


@dataclass(frozen=True)
class ProfileFacts:
    """What escpos's capabilities database says about one printer profile."""

    name: str
    #: Printable width in dots; None when the database does not know it.
    width_px: int | None
    native_qr: bool
    full_cut: bool


def _capabilities_path() -> Path:
    override = os.environ.get("ESCPOS_CAPABILITIES_FILE")  # escpos honours it too
    if override:
        return Path(override)
    return Path(str(resources.files("escpos") / "capabilities.json"))


@functools.lru_cache(maxsize=1)
def _profiles() -> dict[str, Any]:
    profiles: dict[str, Any] = json.loads(_capabilities_path().read_text("utf-8"))["profiles"]
    return profiles


def profile_names() -> list[str]:
    """Every profile escpos knows, sorted."""
    return sorted(_profiles())


def profile_facts(name: str) -> ProfileFacts:
    """The facts of profile ``name``; ValueError with a "did you mean" if unknown."""
    data = _profiles().get(name)
    if data is None:
        hint = difflib.get_close_matches(name, profile_names(), n=1)
        tail = f"did you mean {hint[0]!r}?" if hint else f"known: {', '.join(profile_names())}"
        raise ValueError(f"unknown printer profile {name!r} ({tail})")
    width = data.get("media", {}).get("width", {}).get("pixels")
    features = data.get("features", {})
    return ProfileFacts(
        name=name,
        width_px=width if isinstance(width, int) and not isinstance(width, bool) else None,
        native_qr=bool(features.get("qrCode")),
        full_cut=bool(features.get("paperFullCut") or features.get("paperPartCut")),
    )


class PrinterSection(Section):
    """ESC/POS ticket printer (python-escpos)."""

    connection: Literal["usb", "file", "serial", "network"] = option(
        "file",
        "`file`: the kernel's usblp device (`/dev/usb/lp0`); `usb`: raw USB through pyusb "
        "(`python-escpos[usb]`); `serial`: RS-232 or a USB-serial adapter; `network`: "
        "raw TCP (port 9100).",
    )
    device: str = option(
        "/dev/usb/lp0", "Device file of a `file` or `serial` connection.", example="/dev/ttyUSB0"
    )
    host: str = option("", "Printer address of a `network` connection.", example="192.0.2.40")
    port: int = option(9100, "TCP port of a `network` connection.", ge=1, le=65535)
    baudrate: int = option(
        19200, "Baud rate of a `serial` connection.", unit="baud", ge=1200, le=921600
    )
    usb_vendor: int | None = option(
        None, "USB vendor id of a `usb` connection.", ge=1, le=0xFFFF, example=0x04B8
    )
    usb_product: int | None = option(
        None, "USB product id of a `usb` connection.", ge=1, le=0xFFFF, example=0x0E15
    )
    usb_in_ep: int = option(0x82, "USB IN endpoint (status replies).", ge=0x81, le=0x8F)
    usb_out_ep: int = option(0x01, "USB OUT endpoint (print data).", ge=0x01, le=0x0F)
    profile: str = option(
        "TM-T20II",
        "python-escpos printer profile: paper width, code pages, cutter, native QR.",
    )
    paper_width: int | None = option(
        None,
        "Printable width; unset: the profile's. At most the profile's width (a narrower "
        "roll in a wide printer); required when the profile does not know its width.",
        unit="dots",
        ge=96,
        le=MAX_PAPER_PX,
    )
    native_qr: bool | None = option(
        None,
        "Let the printer draw the QR code (`GS ( k`: ~0.26 KB a ticket) instead of sending "
        "it as an image (~9-14 KB a ticket, 10-14 s at 9600 baud). Unset: native when the "
        "profile says the printer can; `true` overrides a profile that does not know.",
    )
    timeout: float = option(
        1.0,
        "Longest wait for the printer to connect or answer a status query; a status check "
        "before a ticket never takes much longer.",
        unit="s",
        ge=0.05,
        le=30,
    )
    capabilities_dir: Path | None = option(
        None,
        "Folder (owned by the daemon's user, not writable by others) where python-escpos "
        "keeps its parsed printer database between starts; unset: `entrada-escpos-<uid>` "
        "in the system temp folder.",
        lax=True,
    )

    @model_validator(mode="after")
    def _fits_the_connection_and_profile(self) -> PrinterSection:
        problems: list[str] = []
        if self.connection == "usb" and (self.usb_vendor is None or self.usb_product is None):
            problems.append("a usb connection needs usb_vendor and usb_product")
        if self.connection in ("file", "serial") and not self.device:
            problems.append(f"a {self.connection} connection needs device")
        if self.connection == "network" and not self.host:
            problems.append("a network connection needs host")
        try:
            facts = profile_facts(self.profile)
        except ValueError as err:
            problems.append(str(err))
        else:
            if facts.width_px is None and self.paper_width is None:
                problems.append(
                    f"profile {self.profile!r} does not know its paper width: set paper_width"
                )
            if facts.width_px is not None and (self.paper_width or 0) > facts.width_px:
                problems.append(
                    f"paper_width {self.paper_width} is wider than profile {self.profile!r} "
                    f"prints ({facts.width_px} dots)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def paper_width_px(self) -> int:
        """The width the ticket is centred on: ``paper_width`` or the profile's."""
        if self.paper_width is not None:
            return self.paper_width
        width = profile_facts(self.profile).width_px
        assert width is not None  # the validator refuses a profile without one
        return width

    def use_native_qr(self) -> bool:
        """``native_qr``, or what the profile says when it is unset."""
        if self.native_qr is not None:
            return self.native_qr
        return profile_facts(self.profile).native_qr
