"""The simulated ticket printer: what it records, how it fails, and its simulator verb."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from escpos_decode import decode

from controller.settings_printer import PrinterSection
from controller.simchannel import SimChannel
from drivers.printer import PrintError, PrinterStatus, TicketPrinter, TicketSpec
from drivers.printer_sim import SimPrinter
from entrada.codes import Fault

LABELS = {"ahead": "Ahead", "wait": "Wait", "minutes": "min", "issued": "Issued", "scan": "Scan"}


def spec(number: str = "B007") -> TicketSpec:
    return TicketSpec(
        site_name="Entrada Office",
        service_name="Passports",
        number=number,
        issued_at=datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
        ahead=5,
        est_wait_minutes=20,
        qr_url="https://q.example.org/t/" + number,
        labels=LABELS,
    )


@pytest.fixture
def printer() -> SimPrinter:
    return SimPrinter()


def test_it_is_a_ticket_printer(printer):
    assert isinstance(printer, TicketPrinter)
    assert printer.name == "sim"


def test_it_records_tickets_and_their_bytes(printer):
    printer.print_ticket(spec("B007"))
    printer.print_ticket(spec("B008"))

    assert [t.number for t in printer.tickets] == ["B007", "B008"]
    assert printer.output == printer.ticket_bytes[0] + printer.ticket_bytes[1]
    second = decode(printer.ticket_bytes[1])
    assert second.line_with("B008").style.width == 4
    assert second.line_with("Ahead").text == "Ahead: 5"
    assert second.line_with("Wait").text == "Wait: 20 min"
    assert second.qr_codes[0].text == "https://q.example.org/t/B008"
    assert second.ends_with_cut


def test_on_write_sees_every_byte_as_it_is_written():
    chunks: list[bytes] = []
    printer = SimPrinter(on_write=chunks.append)

    printer.print_ticket(spec())

    assert len(chunks) > 10
    assert b"".join(chunks) == printer.output
    assert chunks[0] == b"\x1b@"


@pytest.mark.parametrize(
    ("knobs", "faults"),
    [
        ({}, set()),
        ({"paper": "low"}, {Fault.PRINTER_PAPER_LOW}),
        ({"paper": "out"}, {Fault.PRINTER_PAPER_OUT}),
        ({"cover_open": True}, {Fault.PRINTER_COVER_OPEN}),
        ({"cover_open": True, "paper": "low"}, {Fault.PRINTER_COVER_OPEN, Fault.PRINTER_PAPER_LOW}),
        ({"offline": True, "paper": "out"}, {Fault.PRINTER_OFFLINE}),
    ],
)
def test_status_reports_the_faults_set(printer, knobs, faults):
    for name, value in knobs.items():
        setattr(printer, name, value)

    assert printer.status() == PrinterStatus(frozenset(faults))
    assert printer.status_checks == 1


def test_paper_low_still_prints(printer):
    printer.paper = "low"

    printer.print_ticket(spec())

    assert len(printer.tickets) == 1


@pytest.mark.parametrize("knob", [("paper", "out"), ("cover_open", True), ("offline", True)])
def test_a_printer_that_is_not_ready_prints_nothing(printer, knob):
    setattr(printer, *knob)

    with pytest.raises(PrintError, match="not ready"):
        printer.print_ticket(spec())

    assert (printer.tickets, printer.output, printer.failed_prints) == ([], b"", 1)


def test_fail_next_print_fails_once_while_the_status_says_ready(printer):
    printer.fail_next_print = True

    assert printer.status().ready
    with pytest.raises(PrintError, match="simulated print failure"):
        printer.print_ticket(spec("B001"))
    printer.print_ticket(spec("B002"))

    assert [t.number for t in printer.tickets] == ["B002"]
    assert printer.failed_prints == 1


def test_paper_takes_only_known_states(printer):
    with pytest.raises(ValueError, match="ok, low, out"):
        printer.paper = "empty"


def test_closed_printer(printer):
    printer.close()
    printer.close()

    assert printer.status().faults == {Fault.PRINTER_OFFLINE}
    with pytest.raises(PrintError, match="closed"):
        printer.print_ticket(spec())


def test_sim_uses_the_configured_profile():
    printer = SimPrinter(PrinterSection(profile="POS-5890"))

    printer.print_ticket(spec())

    decoded = decode(printer.output, profile="POS-5890")
    assert (printer.native_qr, decoded.images[0].width) == (False, 384)


# ------------------------------------------------------------ simulator channel


def request(channel: SimChannel, **req) -> dict:
    return channel.dispatch(json.dumps(req).encode())


def test_the_sim_channel_sets_printer_faults(tmp_path, printer):
    channel = SimChannel(tmp_path, "disp-1", {"printer": printer})

    assert request(channel, verb="printer", paper="out", cover="open") == {
        "ok": True,
        "faults": ["fault.printer_cover_open", "fault.printer_paper_out"],
    }
    assert request(channel, verb="printer", paper="ok", cover="closed", offline=True) == {
        "ok": True,
        "faults": ["fault.printer_offline"],
    }
    assert request(channel, verb="printer", offline=False) == {"ok": True, "faults": []}
    assert request(channel, verb="printer", fail_next_print=True)["ok"]
    assert printer.fail_next_print is True


@pytest.mark.parametrize(
    ("req", "error"),
    [
        ({"paper": "empty"}, "paper must be one of ok, low, out"),
        ({"cover": "ajar"}, "cover must be open or closed"),
        ({"offline": "yes"}, "offline must be true or false"),
    ],
)
def test_the_sim_channel_refuses_bad_printer_requests(tmp_path, printer, req, error):
    channel = SimChannel(tmp_path, "disp-1", {"printer": printer})

    reply = request(channel, verb="printer", **req)

    assert reply["ok"] is False and error in reply["error"]
    assert printer.status().ready


def test_the_sim_channel_without_a_simulated_printer(tmp_path):
    channel = SimChannel(tmp_path, "gate-1", {})

    assert request(channel, verb="printer", paper="out") == {
        "ok": False,
        "error": "this device has no simulated printer",
    }
