"""The dispenser with a touch screen (``dispenser.screen = "touch"``) as its only input,
drawn off screen (SDL's dummy driver) and driven pass by pass with
:meth:`DispenserRuntime.step` on the test's thread (pygame's main thread), against a real
Mosquitto with a plain MQTT client in central's place (tests/controller/queue_rig.py).
Touches are synthetic pygame events posted at a button's centre."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pygame
import pytest
from queue_rig import DAY, SERVICES, WAIT, dispenser_config, rig_maker

from controller.clock import SimClock
from controller.commands import IdentifyArgs
from controller.daemon import build_runtime
from controller.dispenser_runtime import DispenserRuntime
from controller.dispenser_screen_loop import IDENTIFY_BG, dispenser_view, service_buttons
from controller.store import DeviceStore
from drivers.queue_registry import build_dispenser_drivers
from entrada.codes import Fault, TicketOutcome
from entrada.protocol_queue import TICKET_PRINTED, QueueBoard
from kiosk_ui.dispenser_model import LastOutcome, ServiceButton

#: The screen drawn headless, small and quick; no push buttons (drivers.buttons = "none").
TOUCH = {"screen": "touch", "video_driver": "dummy", "fullscreen": False, "fps": 60}
ROOT = Path(__file__).resolve().parents[2]


class ScreenRig:
    """A touch-screen dispenser driven by :meth:`DispenserRuntime.step` on this thread."""

    def __init__(self, cfg):
        self.cfg = cfg
        drivers = build_dispenser_drivers(cfg.drivers)
        self.printer = drivers.printer
        self.outcomes = []
        store = DeviceStore(cfg.device.data_dir / "device.db")
        self.rt = DispenserRuntime(cfg, drivers, store, clock=SimClock(), on_outcome=self._record)
        self.rt.start()

    def _record(self, code, detail):
        self.outcomes.append((code, dict(detail)))

    @property
    def device_id(self):
        return self.cfg.device.id

    @property
    def screen(self):
        return self.rt.screen.screen

    def until(self, pred, timeout=WAIT):
        """Run passes until ``pred()`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.rt.step()
            result = pred()
            if result:
                return result
        raise AssertionError(f"timed out after {timeout} s waiting for {pred}")

    def texts(self, region=None):
        """What the last frame drew (in one of the screen's regions)."""
        area = self.screen.regions[region] if region else None
        return [d.text for d in self.screen.last_layout if area is None or area.contains(d.rect)]

    def centre(self, button):
        return self.screen.button_rects[button].center

    def click(self, button):
        pos = self.centre(button)
        event = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1, touch=False)
        pygame.event.post(event)

    def finger(self, button):
        (x, y), (width, height) = self.centre(button), self.screen.size
        event = pygame.event.Event(
            pygame.FINGERDOWN,
            touch_id=1,
            finger_id=0,
            x=x / width,
            y=y / height,
            dx=0.0,
            dy=0.0,
            pressure=1.0,
        )
        pygame.event.post(event)

    def ready(self):
        """In contact with central, the board known and drawn."""
        rt = self.rt
        self.until(lambda: rt.in_contact and rt.board is not None and "Passports" in self.texts())

    def close(self):
        self.rt.shutdown()


@pytest.fixture
def make(tmp_path, broker):
    def start(**dispenser):
        return ScreenRig(dispenser_config(tmp_path, broker.port, {**TOUCH, **dispenser}))

    yield from rig_maker(start, ScreenRig.close)


# ------------------------------------------------------------------- touches


def test_a_click_on_a_button_prints_a_ticket_and_the_screen_shows_its_number(central, make):
    rig = make()
    rig.ready()
    assert {"Passports", "Permits", "Choose a service"} <= set(rig.texts())
    assert rig.screen.pressable

    rig.click("b1")
    rig.until(lambda: rig.outcomes)

    [(code, detail)] = rig.outcomes
    assert (code, detail["number"]) == (TicketOutcome.ISSUED, "A001")
    assert [t.number for t in rig.printer.tickets] == ["A001"]
    assert rig.texts("banner") == ["Please take your ticket", "Your number: A001"]
    [event] = central.wait_events(TICKET_PRINTED)
    assert event == detail


def test_a_finger_on_the_priority_button_is_a_press_of_that_button(central, make):
    rig = make()
    rig.ready()
    assert "Priority" in " ".join(rig.texts())

    rig.finger("b2")
    rig.until(lambda: rig.outcomes)

    [(code, detail)] = rig.outcomes
    assert (code, detail["number"], detail["priority"]) == (TicketOutcome.ISSUED, "B001", True)
    assert [r.priority for r in central.ticket_requests()] == [True]
    assert "Your number: B001" in rig.texts("banner")


def test_a_touch_outside_the_buttons_presses_nothing(central, make):
    rig = make()
    rig.ready()
    title = rig.screen.regions["header"].center
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=title, button=1))

    rig.rt.step()  # the touch is taken in this pass

    assert rig.rt.counters.presses == 0 and rig.outcomes == []


# ------------------------------------------------------------------- faults


def test_paper_out_greys_the_buttons_and_is_reported(central, make):
    rig = make()
    rig.ready()

    rig.printer.paper = "out"
    rig.until(lambda: rig.screen.overlay is not None)

    assert rig.screen.hit(rig.centre("b1")) is None
    assert {"Out of order", "Printer out of paper", "Please ask staff for help"} <= set(rig.texts())
    rig.until(lambda: Fault.PRINTER_PAPER_OUT in central.last_status(rig.device_id).faults)
    rig.click("b1")
    rig.rt.step()  # the click is taken in this pass
    assert rig.rt.counters.presses == 0 and rig.printer.tickets == []
    # paper back: the buttons take touches again
    rig.printer.paper = "ok"
    rig.until(lambda: rig.screen.pressable)
    assert rig.screen.overlay is None
    rig.click("b1")
    rig.until(lambda: rig.outcomes)
    assert [code for code, _ in rig.outcomes] == [TicketOutcome.ISSUED]


def test_a_press_the_printer_refuses_says_why_on_screen(central, make):
    rig = make()
    rig.ready()
    rig.printer.cover_open = True  # before the next printer check: the button still shows

    rig.click("b1")
    rig.until(lambda: rig.outcomes)

    assert rig.outcomes == [(TicketOutcome.PRINTER_NOT_READY, {"service": "A"})]
    assert "Printer cover open" in rig.texts("banner")
    assert rig.screen.overlay is not None


# ------------------------------------------------------------------ language


def test_the_screen_speaks_the_dispensers_language(central, make):
    rig = make(language="pl")
    rig.ready()
    assert "Wybierz sprawę" in rig.texts("header")

    rig.click("b1")
    rig.until(lambda: rig.outcomes)

    assert rig.texts("banner") == ["Proszę odebrać bilet", "Twój numer: A001"]


# ---------------------------------------------------------------- lifecycle


def test_identify_blinks_the_device_id_over_the_screen(central, make):
    rig = make()
    rig.ready()
    assert "identify" in rig.rt.command_handlers()  # no indicator: the screen identifies

    rig.rt._cmd_identify(IdentifyArgs(seconds=2.0), time.time())

    surface = pygame.display.get_surface()
    height = surface.get_size()[1]
    rig.until(lambda: tuple(surface.get_at((2, height // 2)))[:3] == IDENTIFY_BG)


def test_closing_the_window_stops_the_dispenser(central, make):
    rig = make()
    rig.ready()

    pygame.event.post(pygame.event.Event(pygame.QUIT))

    rig.until(lambda: rig.rt.stopping)


def test_run_opens_the_screen_and_closes_it_at_shutdown(tmp_path, broker):
    cfg = dispenser_config(tmp_path, broker.port, TOUCH)
    rt, _channel = build_runtime(cfg)
    assert isinstance(rt, DispenserRuntime) and rt.screen is not None
    rt.request_stop("test over")  # taken in the first pass

    rt.run()

    assert rt.screen.frames >= 1
    assert not rt.screen.is_open and not pygame.display.get_init()


def test_a_dispenser_without_a_screen_never_imports_pygame(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from controller.daemon import build_runtime
        from controller.settings import DeviceConfig

        cfg = DeviceConfig.model_validate({{
            "device": {{"id": "d1", "site": "t", "role": "dispenser",
                        "data_dir": {str(tmp_path / "d1")!r}, "run_dir": {str(tmp_path)!r}}},
            "dispenser": {{"buttons": {{"b1": "A"}}}},
            "drivers": {{"printer": "sim", "buttons": "sim"}},
        }})
        rt, _channel = build_runtime(cfg)
        assert rt.screen is None
        rt.step()
        print("pygame" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"


# ---------------------------------------------------------------------- view


def test_the_view_is_made_of_the_board_the_outcome_and_the_faults():
    board = QueueBoard(
        seq=1,
        ts=0.0,
        site_name="Town Hall",
        business_day=DAY,
        day_ends_at=86400.0,
        calls=[],
        services=list(SERVICES),
    )
    outcome = LastOutcome(TicketOutcome.ISSUED, {"number": "A001"}, 5.0)

    view = dispenser_view(board, outcome, {Fault.PRINTER_PAPER_LOW}, True, "cs")

    assert dict(view.services) == {"A": (2, 300), "B": (0, None)}
    assert dict(view.names) == {"A": "Passports", "B": "Permits"}
    assert (view.outcome, view.faults, view.busy, view.language) == (
        outcome,
        frozenset({Fault.PRINTER_PAPER_LOW}),
        True,
        "cs",
    )
    assert dispenser_view(None, None, (), False, "en") == dispenser_view(
        None, None, set(), False, "en"
    )


def test_the_screens_buttons_are_the_dispensers_buttons_in_order(tmp_path):
    cfg = dispenser_config(
        tmp_path, 1883, {"buttons": {"z": "B", "a": "A"}, "priority_buttons": ["a"]}
    )

    assert service_buttons(cfg.dispenser) == [
        ServiceButton("z", "B", "B", False),
        ServiceButton("a", "A", "A", True),
    ]
