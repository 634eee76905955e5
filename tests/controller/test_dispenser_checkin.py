"""Appointment check-in at the dispenser: a simulated scanner, a simulated printer, a real
Mosquitto and a plain MQTT client in central's place (tests/controller/queue_rig.py) that
also answers check-ins from a table of appointments.

Online numbers start at 1 and leased blocks at 500, so a printed number tells which way
it came; a check-in never takes a leased number.
"""

from __future__ import annotations

import pytest
from queue_rig import (
    DAY,
    DispenserRig,
    FakeCentral,
    dispenser_config,
    online_central,
    rig_maker,
    wait_leases,
)

from controller.roles.dispenser import format_number
from drivers.scanner_sim import SimScanner
from entrada.codes import TicketOutcome
from entrada.protocol_queue import (
    TICKET_PRINTED,
    TICKET_VOIDED,
    LeaseRequest,
    TicketReply,
    TicketRequest,
)
from entrada.site import wait_until

BOTH_TODAY = {("A", DAY): 10, ("B", DAY): 10}
CODE = "123456"


class CheckInCentral(FakeCentral):
    """FakeCentral that answers a check-in from ``appointments``: code -> the service of its
    appointment, or the refusal code central's engine would give. Unknown codes are
    refused ``queue.refused.unknown_code``."""

    def __init__(self, port: int) -> None:
        self.appointments: dict[str, str] = {}
        self._checked_in: dict[str, int] = {}
        super().__init__(port)

    def answer(self, device: str, request: TicketRequest | LeaseRequest) -> None:
        if not isinstance(request, TicketRequest) or request.checkin_code is None:
            super().answer(device, request)
            return
        found = self.appointments.get(request.checkin_code, "queue.refused.unknown_code")
        if found.startswith("queue.refused."):
            reply = TicketReply(
                request_id=request.request_id, ok=False, code=found, service=request.service
            )
        else:
            n = self._checked_in.get(found, 0) + 1
            self._checked_in[found] = n
            reply = TicketReply(
                request_id=request.request_id,
                ok=True,
                code="queue.checked_in",
                service=found,
                ticket_id=f"{self.business_day}:{found}:{n}",
                number=format_number(found, n, 3),
                business_day=self.business_day,
                ahead=0,
                est_wait_s=60,
            )
        self._reply(device, reply)


@pytest.fixture
def central(broker):
    c = CheckInCentral(broker.port)
    c.appointments[CODE] = "B"
    yield from online_central(c)


@pytest.fixture
def make(tmp_path, broker):
    """Start a dispenser with a simulated scanner; wait until it reads."""

    def start(**dispenser):
        cfg = dispenser_config(tmp_path, broker.port, dispenser)
        cfg = cfg.model_copy(update={"drivers": cfg.drivers.model_copy(update={"scanner": "sim"})})
        return DispenserRig(cfg)

    def reading(rig):
        assert wait_until(lambda: scanner(rig).started, 5)

    yield from rig_maker(start, DispenserRig.stop, reading)


def scanner(rig: DispenserRig) -> SimScanner:
    sim = rig.rt.drivers.scanner
    assert isinstance(sim, SimScanner)
    return sim


def scan(rig: DispenserRig, code: str = CODE) -> tuple[str, dict]:
    scanner(rig).scan(code)
    return rig.next_outcome()


def go_offline(central, rig):
    central.set_online(False)
    assert wait_until(lambda: not rig.rt.in_contact, 5)


def printed(rig):
    return [t.number for t in rig.printer.tickets]


def leases_untouched(rig) -> bool:
    return all(rig.rt.leases.left(s, d) == n for (s, d), n in BOTH_TODAY.items())


# ------------------------------------------------------------------- online


def test_a_scanned_code_prints_the_appointments_ticket(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)

    code, detail = scan(rig, " 123456\r")

    assert (code, detail["number"], detail["service"]) == (TicketOutcome.ISSUED, "B001", "B")
    [request] = central.ticket_requests()
    # the service asked for is a placeholder (the first button's): the appointment decides
    assert (request.checkin_code, request.service, request.priority) == (CODE, "A", False)
    [ticket] = rig.printer.tickets
    assert (ticket.number, ticket.service_name, ticket.footer) == ("B001", "Permits", "Appointment")
    [event] = central.wait_events(TICKET_PRINTED)
    assert event == detail
    assert event == {
        "ticket_id": f"{DAY}:B:1",
        "request_id": request.request_id,
        "service": "B",
        "number": "B001",
        "business_day": DAY,
        "issued_at": request.issued_at,
        "priority": False,
        "offline": False,
        "checkin": True,
    }
    assert leases_untouched(rig)
    assert rig.rt.snapshot()["scans"] == 1


@pytest.mark.parametrize(
    ("refusal", "outcome"),
    [
        ("queue.refused.too_early", TicketOutcome.CHECKIN_TOO_EARLY),
        ("queue.refused.too_late", TicketOutcome.CHECKIN_TOO_LATE),
        ("queue.refused.unknown_code", TicketOutcome.CHECKIN_UNKNOWN),
        ("queue.refused.already_checked_in", TicketOutcome.CHECKIN_USED),
        ("queue.refused.appointment_closed", TicketOutcome.CHECKIN_CLOSED),
        ("queue.refused.range_exhausted", TicketOutcome.REFUSED),
    ],
)
def test_centrals_refusals_are_shown_and_print_nothing(central, make, refusal, outcome):
    central.appointments[CODE] = refusal
    rig = make()
    wait_leases(rig, BOTH_TODAY)

    code, detail = scan(rig)

    assert (code, detail) == (outcome, {"checkin": True, "code": refusal})
    assert printed(rig) == []
    assert leases_untouched(rig)
    # the next customer is served at once: nothing was left on its way
    assert rig.issue("b1")[1]["number"] == "A001"
    assert [e["number"] for e in central.wait_events(TICKET_PRINTED)] == ["A001"]


def test_what_is_no_check_in_code_is_refused_without_asking(central, make):
    rig = make()

    assert scan(rig, "https://example.org/x") == (TicketOutcome.CHECKIN_UNKNOWN, {"checkin": True})
    assert scan(rig, "ABC") == (TicketOutcome.CHECKIN_UNKNOWN, {"checkin": True})
    assert central.ticket_requests() == []


def test_a_code_read_twice_is_one_check_in(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    scanner(rig).double_read = True

    code, detail = scan(rig)
    after = rig.issue("b1")  # the next outcome is the press's: the re-read gave none

    assert (code, detail["number"]) == (TicketOutcome.ISSUED, "B001")
    assert (after[0], after[1]["number"]) == (TicketOutcome.ISSUED, "A001")
    assert [r.checkin_code for r in central.ticket_requests()] == [CODE, None]
    assert rig.rt.counters.scans == 1


def test_a_scan_while_a_number_is_on_its_way_waits_its_turn(central, make):
    rig = make(request_timeout=5.0)
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "silent"

    rig.press("b1")
    scanner(rig).scan(CODE)
    [press] = central.wait(lambda: central.ticket_requests())
    central.answer(rig.device_id, press)
    first = rig.next_outcome()
    central.wait(lambda: len(central.ticket_requests()) == 2)
    checkin = central.ticket_requests()[1]
    central.answer(rig.device_id, checkin)
    second = rig.next_outcome()

    assert (first[1]["number"], second[1]["number"]) == ("A001", "B001")
    assert (press.checkin_code, checkin.checkin_code) == (None, CODE)


def test_a_printer_that_cannot_print_asks_nothing(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    rig.printer.paper = "out"

    assert scan(rig) == (TicketOutcome.PRINTER_NOT_READY, {"checkin": True})
    assert central.ticket_requests() == []


def test_a_failed_print_gives_the_appointments_ticket_back(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    rig.printer.fail_next_print = True

    code, detail = scan(rig)

    assert (code, detail) == (TicketOutcome.PRINT_FAILED, {"service": "B", "checkin": True})
    assert central.wait_events(TICKET_VOIDED) == [
        {"ticket_id": f"{DAY}:B:1", "reason": "print_failed"}
    ]
    assert central.events_of(TICKET_PRINTED) == []


# ------------------------------------------------------------------ offline


def test_not_in_contact_a_check_in_is_refused_and_takes_no_leased_number(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    go_offline(central, rig)

    code, detail = scan(rig)

    assert (code, detail) == (TicketOutcome.CHECKIN_OFFLINE, {"checkin": True})
    assert central.ticket_requests() == []
    assert printed(rig) == []
    assert leases_untouched(rig)
    # a press still gets a leased number: refusing the code was no lack of numbers
    assert rig.issue("b1")[0] == TicketOutcome.ISSUED_OFFLINE
    assert [e["number"] for e in central.wait_events(TICKET_PRINTED)] == ["A500"]


def test_central_silent_refuses_the_check_in_and_gives_a_late_ticket_back(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "silent"

    code, detail = scan(rig)

    assert (code, detail) == (TicketOutcome.CHECKIN_OFFLINE, {"checkin": True})
    assert printed(rig) == []
    assert leases_untouched(rig)
    # central's answer comes after all: the appointment's ticket is given back, unprinted
    [request] = central.ticket_requests()
    central.answer(rig.device_id, request)
    assert central.wait_events(TICKET_VOIDED) == [
        {"ticket_id": f"{DAY}:B:1", "reason": "late_reply"}
    ]
    assert printed(rig) == []
    assert central.events_of(TICKET_PRINTED) == []
