"""The ticket dispenser on a simulated printer against a real Mosquitto, with a plain MQTT
client in central's place (tests/controller/queue_rig.py).

Online numbers from the fake central start at 1 ("A001"); leased blocks start at 500, so
a printed number tells which way it came.
"""

import json
import sqlite3
import time

import pytest
from queue_rig import (
    DAY,
    DispenserRig,
    dispenser_config,
    rig_maker,
    wait_leases,
)

from controller.daemon import build_runtime
from controller.dispenser_runtime import MAX_BACKLOG, DispenserRuntime
from controller.roles.dispenser import next_day
from controller.store import DeviceStore
from drivers.printer_sim import SimPrinter
from drivers.queue_registry import build_dispenser_drivers
from entrada.codes import Fault, TicketOutcome
from entrada.protocol_queue import TICKET_PRINTED, TICKET_VOIDED
from entrada.site import wait_until

DAY2 = next_day(DAY)
BOTH_TODAY = {("A", DAY): 10, ("B", DAY): 10}


@pytest.fixture
def make(tmp_path, broker):
    """Start a dispenser (same data_dir every time: a second one is a restart)."""

    def start(**dispenser):
        return DispenserRig(dispenser_config(tmp_path, broker.port, dispenser))

    yield from rig_maker(start, DispenserRig.stop)


def go_offline(central, rig):
    central.set_online(False)
    assert wait_until(lambda: not rig.rt.in_contact, 5)


def printed(rig):
    return [t.number for t in rig.printer.tickets]


# ------------------------------------------------------------------- online


def test_online_press_prints_centrals_number_and_records_it(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)

    code, detail = rig.issue("b1")

    assert code == TicketOutcome.ISSUED
    assert printed(rig) == ["A001"]
    assert b"A001" in rig.printer.ticket_bytes[0]
    ticket = rig.printer.tickets[0]
    assert (ticket.site_name, ticket.service_name) == ("Town Hall", "Passports")
    assert (ticket.ahead, ticket.est_wait_minutes) == (2, 5)
    [request] = central.ticket_requests()
    assert (request.service, request.priority) == ("A", False)
    [event] = central.wait_events(TICKET_PRINTED)
    assert event == detail
    assert event == {
        "ticket_id": f"{DAY}:A:1",
        "request_id": request.request_id,
        "service": "A",
        "number": "A001",
        "business_day": DAY,
        "issued_at": request.issued_at,
        "priority": False,
        "offline": False,
    }
    # the day ends in 12 h, beyond lease_ahead: only today's blocks were asked for
    assert {(r.service, r.business_day) for r in central.lease_requests()} == {
        ("A", DAY),
        ("B", DAY),
    }
    assert wait_until(lambda: rig.rt.store.outbox_depth() == 0, 5)


def test_a_priority_button_asks_for_a_priority_ticket(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)

    code, detail = rig.issue("b2")

    assert (code, detail["number"], detail["priority"]) == (TicketOutcome.ISSUED, "B001", True)
    assert [r.priority for r in central.ticket_requests()] == [True]


def test_central_refusing_a_number_prints_nothing(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "refuse"

    code, detail = rig.issue()

    assert (code, detail) == (TicketOutcome.REFUSED, {"service": "A", "code": "queue.closed"})
    assert printed(rig) == []
    assert rig.rt.leases.left("A", DAY) == 10


# ------------------------------------------------------------------ printer


@pytest.mark.parametrize(
    ("knob", "bad", "good", "fault"),
    [
        ("paper", "out", "ok", Fault.PRINTER_PAPER_OUT),
        ("cover_open", True, False, Fault.PRINTER_COVER_OPEN),
        ("offline", True, False, Fault.PRINTER_OFFLINE),
    ],
)
def test_a_printer_that_cannot_print_takes_no_number(central, make, knob, bad, good, fault):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    setattr(rig.printer, knob, bad)

    code, detail = rig.issue()

    assert (code, detail) == (TicketOutcome.PRINTER_NOT_READY, {"service": "A"})
    central.wait_fault(rig.device_id, fault)
    assert rig.rt.leases.left("A", DAY) == 10
    # fixed: the next press gets central's first number; the refused press asked nothing
    setattr(rig.printer, knob, good)
    code, detail = rig.issue()
    assert (code, detail["number"]) == (TicketOutcome.ISSUED, "A001")
    assert len(central.ticket_requests()) == 1
    central.wait_fault(rig.device_id, fault, present=False)


def test_paper_low_still_prints_and_is_reported(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    rig.printer.paper = "low"

    code, _detail = rig.issue()

    assert code == TicketOutcome.ISSUED
    central.wait_fault(rig.device_id, Fault.PRINTER_PAPER_LOW)


def test_a_failed_print_gives_centrals_number_back(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    rig.printer.fail_next_print = True

    code, detail = rig.issue()

    assert (code, detail) == (TicketOutcome.PRINT_FAILED, {"service": "A"})
    assert central.wait_events(TICKET_VOIDED) == [
        {"ticket_id": f"{DAY}:A:1", "reason": "print_failed"}
    ]
    central.wait_fault(rig.device_id, Fault.PRINTER_FAILED)
    # the next ticket prints and clears the fault; nothing was recorded as printed
    code, detail = rig.issue()
    assert (code, detail["number"]) == (TicketOutcome.ISSUED, "A002")
    central.wait_fault(rig.device_id, Fault.PRINTER_FAILED, present=False)
    assert [e["number"] for e in central.wait_events(TICKET_PRINTED)] == ["A002"]
    assert printed(rig) == ["A002"]


# ------------------------------------------------------------------ offline


def test_central_silent_issues_a_leased_number_and_voids_the_late_reply(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "silent"

    pressed = time.monotonic()
    code, detail = rig.issue()

    assert time.monotonic() - pressed >= rig.cfg.dispenser.request_timeout
    assert (code, detail["number"], detail["offline"]) == (
        TicketOutcome.ISSUED_OFFLINE,
        "A500",
        True,
    )
    [event] = central.wait_events(TICKET_PRINTED)
    assert (event["ticket_id"], event["request_id"], event["business_day"]) == (
        f"{DAY}:A:500",
        None,
        DAY,
    )
    # central's answer comes after all: its number is given back, nothing printed
    [request] = central.ticket_requests()
    central.answer(rig.device_id, request)
    assert central.wait_events(TICKET_VOIDED) == [
        {"ticket_id": f"{DAY}:A:1", "reason": "late_reply"}
    ]
    assert printed(rig) == ["A500"]
    # the same reply redelivered gives nothing back twice (the board after it is a marker)
    central.resend_last_reply()
    seq = central.publish_board().seq
    assert wait_until(lambda: rig.rt.board.seq == seq, 5)
    assert rig.rt.counters.late_voided == 1


def test_not_in_contact_issues_a_leased_number_at_once(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    go_offline(central, rig)

    code, detail = rig.issue()

    assert (code, detail["number"], detail["offline"]) == (
        TicketOutcome.ISSUED_OFFLINE,
        "A500",
        True,
    )
    assert printed(rig) == ["A500"]
    assert [e["number"] for e in central.wait_events(TICKET_PRINTED)] == ["A500"]
    assert central.ticket_requests() == []


def test_a_leased_number_is_used_only_by_a_ticket_that_printed(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    go_offline(central, rig)
    rig.printer.fail_next_print = True

    failed = rig.issue()
    first = rig.issue()
    second = rig.issue()

    assert failed == (TicketOutcome.PRINT_FAILED, {"service": "A"})
    assert (first[1]["number"], second[1]["number"]) == ("A500", "A501")
    assert [e["number"] for e in central.wait_events(TICKET_PRINTED, 2)] == ["A500", "A501"]
    # a voided event would have gone first in the same stream: none was recorded
    assert central.events_of(TICKET_VOIDED) == []
    assert rig.leases()[("A", DAY)] == [(500, 509, 502)]


def test_no_leased_numbers_refuses_the_ticket(central, make):
    central.lease_mode = "refuse"
    rig = make()
    central.wait(lambda: len(central.lease_requests()) >= 2)
    go_offline(central, rig)

    code, detail = rig.issue()

    assert (code, detail) == (TicketOutcome.NO_NUMBERS, {"service": "A"})
    assert printed(rig) == []


def test_another_block_is_leased_when_few_numbers_are_left(central, make):
    rig = make(lease_size=4, lease_low=3)
    wait_leases(rig, {("A", DAY): 4, ("B", DAY): 4})
    go_offline(central, rig)
    assert [rig.issue()[1]["number"] for _ in range(2)] == ["A500", "A501"]
    assert len(central.lease_requests()) == 2  # nothing is asked while central is away

    central.set_online(True)

    central.wait(lambda: len(central.lease_requests()) >= 3)
    third = central.lease_requests()[2]
    assert (third.service, third.business_day, third.size) == ("A", DAY, 4)
    wait_leases(rig, {("A", DAY): 6})
    assert rig.leases()[("A", DAY)] == [(500, 503, 502), (504, 507, 504)]


def test_next_days_blocks_are_leased_before_the_day_ends(central, make):
    central.day_ends_at = time.time() + 1800  # within lease_ahead (1 h)
    central.publish_board()

    rig = make()

    wait_leases(rig, {**BOTH_TODAY, ("A", DAY2): 10, ("B", DAY2): 10})
    assert sorted((r.service, r.business_day) for r in central.lease_requests()) == [
        ("A", DAY),
        ("A", DAY2),
        ("B", DAY),
        ("B", DAY2),
    ]


def test_offline_across_the_day_boundary_issues_the_next_days_numbers(central, make):
    central.day_ends_at = time.time() + 1800
    central.lease_first[("A", DAY2)] = 100
    central.publish_board()
    rig = make()
    wait_leases(rig, {**BOTH_TODAY, ("A", DAY2): 10})
    go_offline(central, rig)
    today = rig.issue()

    rig.clock.set(central.day_ends_at + 60)
    tomorrow = rig.issue()

    assert (today[1]["number"], today[1]["business_day"]) == ("A500", DAY)
    assert (tomorrow[1]["number"], tomorrow[1]["business_day"]) == ("A100", DAY2)
    assert tomorrow[1]["ticket_id"] == f"{DAY2}:A:100"
    assert [e["ticket_id"] for e in central.wait_events(TICKET_PRINTED, 2)] == [
        f"{DAY}:A:500",
        f"{DAY2}:A:100",
    ]
    # a day later still without central: no day's numbers left, none of a gone day used
    rig.clock.set(central.day_ends_at + 86400 + 60)
    assert rig.issue() == (TicketOutcome.NO_NUMBERS, {"service": "A"})


def test_a_restart_keeps_the_lease_cursors(central, make):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    go_offline(central, rig)
    before = [rig.issue()[1]["number"] for _ in range(2)]
    rig.stop()

    again = make()  # same data_dir: the device rebooted, central still away
    assert wait_until(lambda: again.rt.board is not None, 5)
    code, detail = again.issue()

    assert before == ["A500", "A501"]
    assert (code, detail["number"]) == (TicketOutcome.ISSUED_OFFLINE, "A502")
    events = central.wait_events(TICKET_PRINTED, 3)
    assert [e["number"] for e in events] == ["A500", "A501", "A502"]
    assert len({e["ticket_id"] for e in events}) == 3


def test_presses_while_a_number_is_on_its_way_wait_their_turn(central, make):
    rig = make(request_timeout=0.2)
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "silent"

    for _ in range(1 + MAX_BACKLOG + 1):  # one on its way, a full backlog, one too many
        rig.press()

    assert rig.next_outcome() == (TicketOutcome.BUSY, {"service": "A"})
    numbers = []
    for _ in range(1 + MAX_BACKLOG):  # each waits for central's time to run out, in order
        code, detail = rig.next_outcome()
        assert code == TicketOutcome.ISSUED_OFFLINE
        numbers.append(detail["number"])
    assert numbers == [f"A{500 + i}" for i in range(1 + MAX_BACKLOG)]
    assert rig.rt.counters.presses == 2 + MAX_BACKLOG


# ----------------------------------------------------------------- plumbing


def test_a_rebuilt_store_has_no_leases_and_takes_new_ones(tmp_path, broker):
    cfg = dispenser_config(tmp_path, broker.port)
    drivers = build_dispenser_drivers(cfg.drivers)
    rt = DispenserRuntime(cfg, drivers, DeviceStore(cfg.device.data_dir / "device.db"))
    rt.leases.add("A", DAY, 500, 509)
    try:
        rt._recover_store("test: corrupt")  # what the owner loop does on a DatabaseError

        assert rt.leases.blocks() == []
        assert rt.leases.add("A", DAY, 600, 609)
        assert rt.leases.next_number("A", DAY) == 600
        assert Fault.STORE_REBUILT in rt.faults
    finally:
        rt.store.close()
        drivers.close()


def test_the_daemon_builds_a_dispenser_on_a_simulated_printer(tmp_path, broker):
    cfg = dispenser_config(tmp_path, broker.port)

    rt, channel = build_runtime(cfg)

    try:
        assert isinstance(rt, DispenserRuntime)
        assert isinstance(rt.drivers.printer, SimPrinter)
        assert channel is not None and "printer" in channel.simulators
    finally:
        rt.store.close()
        rt.close_drivers()


def test_after_central_went_silent_presses_use_leases_at_once_until_it_shows_life(central, make):
    rig = make(request_timeout=0.3)
    wait_leases(rig, BOTH_TODAY)
    central.ticket_mode = "silent"

    rig.press()  # waits out the timeout once
    first = rig.next_outcome()
    rig.press()  # not asked again: straight to the leased numbers
    second = rig.next_outcome()
    asked_while_silent = len(central.ticket_requests())
    central.ticket_mode = "answer"
    central.publish_board()  # central published: it is alive again
    assert wait_until(lambda: rig.rt.in_contact, 5)
    rig.press()
    third = rig.next_outcome()

    assert [first[0], second[0]] == [TicketOutcome.ISSUED_OFFLINE] * 2
    assert asked_while_silent == 1
    assert third[0] == TicketOutcome.ISSUED


def test_a_ticket_caught_mid_print_by_a_power_cut_counts_as_printed(central, make, tmp_path):
    rig = make()
    wait_leases(rig, BOTH_TODAY)
    go_offline(central, rig)
    db = rig.rt.store.path
    rig.stop()
    # The power went while A500 was printing: held in flight, its event never committed.
    in_flight = {
        "ticket_id": f"{DAY}:A:500",
        "request_id": None,
        "service": "A",
        "number": "A500",
        "business_day": DAY,
        "issued_at": time.time(),
        "priority": False,
        "offline": True,
    }
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO queue_inflight (ticket_id, event) VALUES (?, ?)",
        (in_flight["ticket_id"], json.dumps(in_flight)),
    )
    conn.commit()
    conn.close()

    again = make()  # rebooted, central still away
    assert wait_until(lambda: again.rt.board is not None, 5)
    code, detail = again.issue()
    central.set_online(True)
    events = central.wait_events(TICKET_PRINTED, 2)

    assert (code, detail["number"]) == (TicketOutcome.ISSUED_OFFLINE, "A501")  # never A500 again
    assert [(e["number"], e.get("recovered", False)) for e in events] == [
        ("A500", True),
        ("A501", False),
    ]
    assert again.rt.inflight.left_over() == []
