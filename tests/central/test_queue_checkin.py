"""Appointment check-in end to end: a real central service with a [queue], a real dispenser
runtime on a simulated printer and scanner, a real Mosquitto between them.

An appointment is booked through the queue desk (as the API and ``entrada queue book``
do), a walk-in takes a ticket of the same service first, then the appointment's code is
scanned at the dispenser: its ticket prints, central holds it waiting, and the counter's
next call is the appointment's, ahead of the earlier walk-in.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from central.queue.model import AppointmentState, TicketState
from central.service import CentralService
from central.settings import CentralConfig
from controller import dispenser_checkin
from controller.dispenser_runtime import DispenserRuntime
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.printer_sim import SimPrinter
from drivers.queue_registry import build_dispenser_drivers
from drivers.scanner_sim import SimScanner
from entrada.broker import PrivateBroker
from entrada.codes import TicketOutcome
from entrada.protocol_queue import QueueOp
from entrada.site import wait_until

SITE = "test"  # tests/central/conftest.py's
WAIT = 10.0
QUEUE = {
    "timezone": "UTC",
    "site_name": "Town Hall",
    "services": [
        {"id": "A", "name": "Registration", "prefix": "A"},
        {"id": "B", "name": "Permits", "prefix": "B"},
    ],
    "counters": [{"id": "c1", "name": "1", "services": {"A": 1.0, "B": 1.0}}],
    "appointment_early": 60.0,
    "appointment_late": 15.0,
}


@pytest.fixture
def central(
    tmp_path: Path, broker: PrivateBroker, config_factory: Callable[..., CentralConfig]
) -> Iterator[CentralService]:
    service = CentralService(config_factory(tmp_path / "central", broker.port, queue=QUEUE))
    service.start()
    assert service.wait_ready(WAIT)
    yield service
    service.stop()


class Dispenser:
    """A dispenser runtime on its own thread; b1 issues A (the placeholder of a check-in),
    b2 issues B."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.cfg = DeviceConfig.model_validate(
            {
                "device": {
                    "id": "disp-1",
                    "site": SITE,
                    "role": "dispenser",
                    "data_dir": str(tmp_path / "disp-1"),
                    "run_dir": str(tmp_path / "run"),
                },
                "mqtt": {"port": port, "reconnect_min": 0.05, "reconnect_max": 0.5},
                "outbox": {"ack_timeout": 0.5, "backoff_max": 1.0},
                "dispenser": {
                    "buttons": {"b1": "A", "b2": "B"},
                    "timezone": "UTC",
                    "request_timeout": 5.0,
                },
                "drivers": {"printer": "sim", "scanner": "sim"},
            }
        )
        self.outcomes: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        drivers = build_dispenser_drivers(self.cfg.drivers)
        assert isinstance(drivers.printer, SimPrinter)
        assert isinstance(drivers.scanner, SimScanner)
        self.printer, self.scanner = drivers.printer, drivers.scanner
        store = DeviceStore(self.cfg.device.data_dir / "device.db")
        self.rt = DispenserRuntime(
            self.cfg, drivers, store, on_outcome=lambda c, d: self.outcomes.put((c, d))
        )
        self.thread = threading.Thread(target=self.rt.run, name="dispenser", daemon=True)
        self.thread.start()

    def outcome(self) -> tuple[str, dict[str, Any]]:
        return self.outcomes.get(timeout=WAIT)

    def stop(self) -> None:
        self.rt.request_stop("test over")
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the dispenser did not stop"


@pytest.fixture
def dispenser(tmp_path: Path, broker: PrivateBroker) -> Iterator[Dispenser]:
    d = Dispenser(tmp_path, broker.port)
    yield d
    d.stop()


def staff(central: CentralService, op: str, **args: Any) -> dict[str, Any]:
    """A staff operation through the desk, on central's owner thread (the API's way)."""
    desk = central.desk
    assert desk is not None
    request = QueueOp(op_id=f"{op}-{time.monotonic_ns()}", op=op, args=args)
    answer = central.on_owner(lambda: desk.answer(request, time.time()))
    assert answer.ok, answer
    return answer.result


def engine_ticket(central: CentralService, ticket_id: str) -> Any:
    desk = central.desk
    assert desk is not None
    return central.on_owner(lambda: desk.engine.ticket(ticket_id))


def waiting(central: CentralService, ticket_id: str) -> bool:
    ticket = engine_ticket(central, ticket_id)
    return ticket is not None and ticket.state is TicketState.WAITING


def test_a_scanned_appointment_is_called_ahead_of_an_earlier_walk_in(
    central: CentralService, dispenser: Dispenser
) -> None:
    booked = staff(central, "book_appointment", service="B", slot=time.time() + 60)
    code = booked["appointment"]["code"]
    assert wait_until(lambda: dispenser.rt.in_contact, WAIT)
    dispenser.rt.on_press("b2")  # a walk-in for B, before the appointment arrives
    walk_in = dispenser.outcome()
    assert (walk_in[0], walk_in[1]["service"]) == (TicketOutcome.ISSUED, "B")
    assert wait_until(lambda: waiting(central, walk_in[1]["ticket_id"]), WAIT)

    dispenser.scanner.scan(code)
    outcome, detail = dispenser.outcome()

    # central answered with the appointment's service (the request's was b1's, "A")
    assert (outcome, detail["service"], detail["checkin"]) == (TicketOutcome.ISSUED, "B", True)
    assert detail["number"].startswith("B") and detail["number"] != walk_in[1]["number"]
    ticket = dispenser.printer.tickets[-1]
    # nobody ahead: the walk-in waiting in B is behind an appointment
    assert (ticket.number, ticket.service_name, ticket.ahead) == (detail["number"], "Permits", 0)
    assert wait_until(lambda: waiting(central, detail["ticket_id"]), WAIT)
    desk = central.desk
    assert desk is not None
    appointment = central.on_owner(lambda: desk.engine.appointment(booked["appointment"]["id"]))
    assert appointment.state is AppointmentState.CHECKED_IN
    assert appointment.ticket_id == detail["ticket_id"]

    staff(central, "sign_in", counter="c1", staff="ada")
    called = staff(central, "call_next", counter="c1")

    assert called["ticket"]["id"] == detail["ticket_id"]
    assert called["ticket"]["label"] == detail["number"]
    assert engine_ticket(central, walk_in[1]["ticket_id"]).state is TicketState.WAITING


def test_a_ticket_that_did_not_print_leaves_the_appointment_booked(
    central: CentralService, dispenser: Dispenser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispenser_checkin, "SCAN_DEBOUNCE", 0.0)  # scanned again at once
    booked = staff(central, "book_appointment", service="A", slot=time.time())
    appointment_id, code = booked["appointment"]["id"], booked["appointment"]["code"]
    desk = central.desk
    assert desk is not None

    def state() -> AppointmentState:
        return central.on_owner(lambda: desk.engine.appointment(appointment_id)).state

    assert wait_until(lambda: dispenser.rt.in_contact, WAIT)
    dispenser.printer.fail_next_print = True

    dispenser.scanner.scan(code)
    failed = dispenser.outcome()

    assert failed == (TicketOutcome.PRINT_FAILED, {"service": "A", "checkin": True})
    # the dispenser's queue.ticket_voided gives the number back and the appointment reopens
    assert wait_until(lambda: state() is AppointmentState.BOOKED, WAIT)
    dispenser.scanner.scan(code)
    outcome, detail = dispenser.outcome()
    assert outcome == TicketOutcome.ISSUED
    assert wait_until(lambda: waiting(central, detail["ticket_id"]), WAIT)
    assert state() is AppointmentState.CHECKED_IN


def test_a_code_central_does_not_know_is_refused(
    central: CentralService, dispenser: Dispenser
) -> None:
    staff(central, "book_appointment", service="A", slot=time.time() + 3 * 3600, code="424242")
    assert wait_until(lambda: dispenser.rt.in_contact, WAIT)

    dispenser.scanner.scan("999999")
    unknown = dispenser.outcome()
    dispenser.scanner.scan("424242")  # booked, but hours ahead
    early = dispenser.outcome()

    assert unknown == (
        TicketOutcome.CHECKIN_UNKNOWN,
        {"checkin": True, "code": "queue.refused.unknown_code"},
    )
    assert early == (
        TicketOutcome.CHECKIN_TOO_EARLY,
        {"checkin": True, "code": "queue.refused.too_early"},
    )
    assert dispenser.printer.tickets == []
