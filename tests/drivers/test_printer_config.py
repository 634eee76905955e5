"""``[drivers.escpos]``: the printer's config section, checked against escpos's profiles."""

from __future__ import annotations

import pytest

from controller.settings_printer import PrinterSection, profile_facts, profile_names
from entrada.config import loads, validate
from entrada.errors import ConfigError


def test_defaults_are_a_tm_t20ii_on_usblp():
    cfg = PrinterSection()

    assert (cfg.connection, cfg.device, cfg.profile) == ("file", "/dev/usb/lp0", "TM-T20II")
    assert cfg.paper_width_px() == 576
    assert cfg.use_native_qr() is True


def test_a_profile_without_native_qr_defaults_to_raster():
    cfg = PrinterSection(profile="POS-5890")

    assert (cfg.paper_width_px(), cfg.use_native_qr()) == (384, False)
    assert PrinterSection(profile="POS-5890", native_qr=True).use_native_qr() is True


def test_a_narrower_roll_in_a_wide_printer():
    assert PrinterSection(paper_width=420).paper_width_px() == 420


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"profile": "TM-T20"}, "unknown printer profile 'TM-T20' (did you mean 'TM-T20II'?)"),
        ({"profile": "default"}, "does not know its paper width: set paper_width"),
        ({"paper_width": 640}, "paper_width 640 is wider than profile 'TM-T20II' prints (576"),
        ({"connection": "usb"}, "a usb connection needs usb_vendor and usb_product"),
        ({"connection": "network"}, "a network connection needs host"),
        ({"connection": "serial", "device": ""}, "a serial connection needs device"),
        ({"paper_width": 50}, "greater than or equal to 96"),
        ({"connection": "lpt"}, "connection"),
        ({"baud": 9600}, "did you mean 'baudrate'"),
    ],
)
def test_config_errors(data, message):
    with pytest.raises(ConfigError) as caught:
        validate(PrinterSection, data)

    assert message in str(caught.value)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ConfigError) as caught:
        validate(PrinterSection, {"connection": "network", "profile": "nope"})

    text = str(caught.value)
    assert "needs host" in text and "unknown printer profile 'nope'" in text


def test_a_profile_without_width_takes_paper_width():
    cfg = validate(PrinterSection, {"profile": "default", "paper_width": 512})

    assert (cfg.paper_width_px(), cfg.use_native_qr()) == (512, True)


def test_toml_with_hex_usb_ids():
    cfg = loads(
        'connection = "usb"\nusb_vendor = 0x04b8\nusb_product = 0x0e15\ntimeout = 0.5\n',
        PrinterSection,
    )

    assert (cfg.usb_vendor, cfg.usb_product, cfg.timeout) == (0x04B8, 0x0E15, 0.5)


def test_profile_facts_come_from_escpos_database():
    facts = profile_facts("TM-T88V")

    assert (facts.width_px, facts.native_qr, facts.full_cut) == (512, True, True)
    assert profile_facts("POS-5890").full_cut is False
    assert "TM-T20II" in profile_names()
