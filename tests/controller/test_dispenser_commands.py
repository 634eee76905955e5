"""Technicians' commands on a dispenser: print-test goes down the customer's printing path,
identify signals the indicator; both over MQTT 5 through `entrada tech`'s own exchange."""

from __future__ import annotations

import time
from typing import Any

import pytest
from queue_rig import SITE, DispenserRig, dispenser_config, rig_maker

from entrada import cli_tech, protocol
from entrada.settings_common import MqttSection
from entrada.site import wait_until


@pytest.fixture
def make(tmp_path, broker):
    def start(**drivers):
        return DispenserRig(dispenser_config(tmp_path, broker.port, drivers=drivers))

    def online(rig):  # a command sent before the device subscribed would be lost
        assert wait_until(lambda: rig.rt.online, 5)

    yield from rig_maker(start, DispenserRig.stop, ready=online)


@pytest.fixture
def tech(broker):
    link = cli_tech.TechLink(MqttSection(host="127.0.0.1", port=broker.port), "tech")
    link.open()
    yield link
    link.close()


def command(tech: Any, device: str, name: str, **args: Any) -> protocol.CommandResponse:
    request = protocol.CommandRequest(
        id=cli_tech.new_command_id(), name=name, args=args, expires=time.time() + 30
    )
    answer = cli_tech.send_command(
        tech, protocol.Topics(SITE), device, request, expiry=30.0, timeout=10.0
    )
    assert answer is not None, f"no answer to {name}"
    return answer


def test_print_test_prints_a_test_ticket_and_reports_the_printer(central, make, tech):
    rig = make()

    answer = command(tech, rig.device_id, "print-test", text="hello from the tech")

    assert (answer.ok, answer.code) == (True, "cmd.done")
    ticket = rig.printer.tickets[-1]
    assert (ticket.number, ticket.footer) == ("TEST", "hello from the tech")
    assert answer.result["faults"] == []


def test_print_test_on_an_empty_printer_fails_with_the_fault(central, make, tech):
    rig = make()
    rig.printer.paper = "out"

    answer = command(tech, rig.device_id, "print-test")

    assert (answer.ok, answer.code) == (False, "cmd.failed")
    assert "fault.printer_paper_out" in answer.result["faults"]
    assert not any(t.number == "TEST" for t in rig.printer.tickets)


def test_identify_signals_the_indicator(central, make, tech):
    rig = make(indicator="sim")

    answer = command(tech, rig.device_id, "identify", seconds=3)

    assert (answer.ok, answer.result) == (True, {"seconds": 3.0})
    indicator = rig.rt.drivers.indicator
    assert indicator is not None
    assert indicator.signals[-1] == "identify"  # type: ignore[attr-defined]
