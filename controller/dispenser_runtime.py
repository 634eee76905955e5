"""The ticket dispenser: a service button becomes a printed, numbered ticket.

On a press the owner thread asks the printer first; one that cannot print takes no number
(``ticket.refused.printer``, the fault goes upstream). Then:

- **online** (central in contact): a :class:`~entrada.protocol_queue.TicketRequest`;
  central answers with the next number of the service, held as "printing" until the
  dispenser's ``queue.ticket_printed`` event arrives. A failed print records
  ``queue.ticket_voided`` and central gives the number to the next customer.
- **offline** (no contact, or no answer within ``dispenser.request_timeout``): the next
  number of a block leased in advance. The block's cursor moves in the same transaction
  as the ``queue.ticket_printed`` event, after the print succeeded: a failed print
  consumes nothing. Central adds the ticket to the queue by its issue time.

A late answer to a request that already went the offline way is voided, so central's
number is not left waiting for a print that never comes. Presses are taken one at a time:
a press while a number is on its way waits for it (up to :data:`MAX_BACKLOG` presses;
more are refused, ``ticket.refused.busy``).

Blocks are leased while online, per service and business day, whenever fewer than
``dispenser.lease_low`` unused numbers are left, and for the next business day once it is
``dispenser.lease_ahead`` away. The board (retained) tells the business day, waiting counts
and estimated waits printed on tickets.

Presses come from push buttons (gpiozero's thread enqueues them) and/or a touch screen
(``dispenser.screen = "touch"``, controller/dispenser_screen_loop.py): then :meth:`run`
is pygame's loop on the main thread, like the display board's, and a touch on a service
button is the same press as a push button's of that name. The screen shows the board's
waits, the last outcome and the printer's faults; without it pygame is never imported.

Appointments check in with a scanned code (controller/dispenser_checkin.py): central
alone can verify it, so without central it is refused and never takes a leased number.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controller.clock import Clock
from controller.commands import (
    CommandCode,
    CommandHandler,
    CommandOutcome,
    IdentifyArgs,
    PrintTestArgs,
)
from controller.device_core import IDENTIFY_SIGNAL, DeviceCore
from controller.dispenser_checkin import Scan, is_checkin_code, refusal, same_scan
from controller.dispenser_parts import DispenserCounters, DispenserDrivers, Pending, TicketFace
from controller.dispenser_screen_loop import ScreenLoop, dispenser_view
from controller.inputs import Press
from controller.leases import InFlight, LeaseBook, LeaseKeeper
from controller.roles.dispenser import DayView, format_number
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.printer import PrintError, PrinterStatus, TicketSpec
from entrada import protocol
from entrada.codes import Fault, TicketOutcome
from entrada.errors import DriverError
from entrada.mqtt import Incoming
from entrada.protocol_queue import (
    TICKET_PRINTED,
    TICKET_VOIDED,
    LeaseReply,
    QueueBoard,
    QueueTopics,
    TicketReply,
    TicketRequest,
)
from kiosk_ui.words import Words

if TYPE_CHECKING:
    from kiosk_ui.dispenser_model import DispenserView

logger = logging.getLogger(__name__)

PRINTER_FAULTS = (
    Fault.PRINTER_PAPER_OUT,
    Fault.PRINTER_PAPER_LOW,
    Fault.PRINTER_COVER_OPEN,
    Fault.PRINTER_OFFLINE,
)
#: Presses waiting while a number is on its way; one more is refused (``busy``).
MAX_BACKLOG = 8
LATE_MEMORY = 600.0  # remember requests that went offline this long, s


class DispenserRuntime(DeviceCore):
    """Everything a dispenser does, driven from one thread by :meth:`run`."""

    role_name = "dispenser"

    def __init__(
        self,
        cfg: DeviceConfig,
        drivers: DispenserDrivers,
        store: DeviceStore,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
        on_outcome: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.d = cfg.dispenser
        self.drivers = drivers
        super().__init__(
            cfg.device.id,
            cfg.device.site,
            cfg.mqtt,
            cfg.outbox,
            store,
            clock=clock,
            notify=notify,
            indicator=drivers.indicator,
        )
        self.queue = QueueTopics(self.topics)
        self.leases = LeaseBook(store.conn)
        self.inflight = InFlight(store.conn)
        self.board: QueueBoard | None = None
        self.counters = DispenserCounters()
        self._pending: Pending | None = None
        #: A request went unanswered: central's status may say online, but it is not
        #: answering (hung, or cut off from the broker and its will not yet out).
        self._central_silent = False
        self._backlog: deque[Press | Scan] = deque()
        #: The last code scanned and when (monotonic): a re-read is the same scan.
        self._last_scan: Scan | None = None
        #: request id -> when it went the offline way (monotonic): a late number is voided.
        self._fell_back: dict[str, float] = {}
        #: (service, day) -> monotonic time a lease request may be repeated.
        self.leasing = LeaseKeeper(
            self.device_id,
            self.d,
            lambda r: self.publish(self.queue.request(self.device_id), protocol.encode(r)),
        )
        self.face = TicketFace(self.d)
        self._appointment_word = Words(self.d.language).get("ticket.appointment")
        self._on_outcome = on_outcome or (lambda _code, _detail: None)
        #: The touch screen (``dispenser.screen = "touch"``); None: push buttons only.
        self.screen: ScreenLoop | None = None
        if self.d.screen == "touch":
            self.screen = ScreenLoop(self.d, self.device_id)

    def subscriptions(self) -> list[tuple[str, int]]:
        queue = QueueTopics(self.topics)
        return [(queue.reply(self.device_id), 1), (queue.board, 1)]

    # ------------------------------------------------------------ other threads

    def on_press(self, button: str) -> None:
        self._enqueue(Press(button, self.clock.monotonic()))

    def on_scan(self, code: str) -> None:
        """A code from the scanner (its thread): enqueued like a press."""
        self._enqueue(Scan(code, self.clock.monotonic()))

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """The screen (main thread), the buttons, the scanner, the printer's state, then
        the link. A scanner that does not start costs check-in only: it is logged."""
        self._recover_in_flight()
        if self.screen is not None:
            self.screen.open()
        if self.drivers.buttons is not None:
            self.drivers.buttons.start(self.on_press)
        if self.drivers.scanner is not None:
            try:
                self.drivers.scanner.start(self.on_scan)
            except DriverError as err:
                logger.error("the check-in scanner did not start: %s", err)
        self._check_printer()
        super().start()

    def run(self) -> None:
        """Serve until a Stop arrives; with a touch screen, pass after pass of
        :meth:`step` (call it on the main thread then)."""
        if self.screen is None:
            super().run()
            return
        try:
            self.start()
            while not self.stopping:
                self.step()
        finally:
            self.shutdown()

    def step(self) -> None:
        """One pass of the touch screen's loop, after :meth:`start` (main thread): the
        window's touches become presses, the inbox is served until the next pass is due
        (at once when a touch was queued), and a frame is drawn when what the screen shows
        changed. Tests drive the dispenser with it. Without a screen: one serve_once."""
        screen = self.screen
        if screen is None:
            self.serve_once()
            return
        pressed, closed = screen.poll()
        for button in pressed:
            self.on_press(button)
        if closed:
            self.request_stop("window closed")
        self.serve_once(timeout=screen.wait(self.clock.monotonic()))
        screen.frame(self.screen_view(), self.clock.monotonic())

    @property
    def busy(self) -> bool:
        """A number is on its way, or presses wait for one."""
        return self._pending is not None or bool(self._backlog)

    def screen_view(self) -> DispenserView:
        """What the touch screen shows now."""
        outcome = self.screen.outcome if self.screen is not None else None
        return dispenser_view(self.board, outcome, self.faults, self.busy, self.d.language)

    def close_drivers(self) -> None:
        self.drivers.close()
        if self.screen is not None:
            self.screen.close()

    def urgent(self, item: object) -> bool:
        return isinstance(item, Press | Scan)

    def handle_item(self, item: object) -> bool:
        if isinstance(item, Press):
            self._on_press(item)
            return True
        if isinstance(item, Scan):
            self._on_scan(item)
            return True
        return False

    def handle_message(self, msg: Incoming) -> bool:
        if msg.topic == self.queue.board:
            board = protocol.decode(QueueBoard, msg.payload)
            if self.board is None or board.seq > self.board.seq or board.ts > self.board.ts:
                self._central_silent = False  # central published just now: it is alive
            if self.board is None or board.seq >= self.board.seq or board.ts > self.board.ts:
                self.board = board
                self._lease_upkeep()
        elif msg.topic == self.queue.reply(self.device_id):
            reply = protocol.decode_one_of((TicketReply, LeaseReply), msg.payload)
            self._central_silent = False
            if isinstance(reply, TicketReply):
                self._on_ticket_reply(reply)
            elif isinstance(reply, LeaseReply):
                self.leasing.on_reply(reply, self.leases)
        else:
            return False
        return True

    def after_pass(self) -> None:
        pending = self._pending
        if pending is not None and self.clock.monotonic() >= pending.deadline:
            logger.info(
                "no number from central within %.2f s: leased numbers", self.d.request_timeout
            )
            self._pending = None
            self._fell_back[pending.request_id] = self.clock.monotonic()
            # Until central shows it is alive again (an answer, a new board), presses go
            # straight to the leased numbers instead of each waiting out the timeout.
            self._central_silent = True
            if pending.checkin:
                self._outcome(TicketOutcome.CHECKIN_OFFLINE, {"checkin": True})
            else:
                self._issue_offline(pending.service, pending.priority, pending.issued_at)
        while self._pending is None and self._backlog:
            self._serve(self._backlog.popleft())

    def _lease_upkeep(self) -> None:
        self.leasing.upkeep(
            self.leases, self.board, self.in_contact, self.clock.time(), self.clock.monotonic()
        )

    def on_online(self) -> None:
        self._central_silent = False
        self.leasing.reset()
        self._lease_upkeep()

    def on_store_rebuilt(self) -> None:
        # The rebuilt store has no leases (see controller/leases.py): ask for new blocks.
        self.leases = LeaseBook(self.store.conn)
        self.inflight = InFlight(self.store.conn)
        self.leasing.reset()
        self._lease_upkeep()

    def on_housekeeping(self, now: float) -> None:
        self._check_printer()
        self._lease_upkeep()
        self._fell_back = {r: t for r, t in self._fell_back.items() if now - t < LATE_MEMORY}
        day = DayView.of(self.board)
        if day is not None:
            self.leases.forget_before(day.day_at(self.clock.time()))

    # ------------------------------------------------------------------ presses

    def _on_press(self, press: Press) -> None:
        service = self.d.buttons.get(press.button)
        if service is None:
            logger.warning("button %r issues no service (dispenser.buttons)", press.button)
            return
        self.counters.presses += 1
        self._take(press, {"service": service})

    def _take(self, item: Press | Scan, detail: dict[str, Any]) -> None:
        """Serve ``item`` now, or once the number on its way came (``busy`` when too many
        wait already)."""
        if self._pending is None and not self._backlog:
            self._serve(item)
        elif len(self._backlog) >= MAX_BACKLOG:
            self._outcome(TicketOutcome.BUSY, detail)
        else:
            self._backlog.append(item)

    def _serve(self, item: Press | Scan) -> None:
        if isinstance(item, Scan):
            self._check_in(item)
        else:
            self._issue(item)

    def _on_scan(self, scan: Scan) -> None:
        last, self._last_scan = self._last_scan, scan
        if same_scan(last, scan):
            logger.debug("the same code scanned again: one scan")
            return
        self.counters.scans += 1
        self._take(scan, {"checkin": True})

    def _check_in(self, scan: Scan) -> None:
        """Ask central for the ticket of the appointment whose code was scanned."""
        detail: dict[str, Any] = {"checkin": True}
        if not is_checkin_code(scan.code):
            logger.info("a scanned code of %d characters is no check-in code", len(scan.code))
            self._outcome(TicketOutcome.CHECKIN_UNKNOWN, detail)
            return
        if not self._check_printer().ready:
            self._outcome(TicketOutcome.PRINTER_NOT_READY, detail)
            return
        placeholder = next(iter(self.d.buttons.values()))  # the appointment decides
        if not self._ask(placeholder, False, self.clock.time(), scan.code):
            # Nothing here can tell a good code from a bad one: no leased number for it.
            self._outcome(TicketOutcome.CHECKIN_OFFLINE, detail)

    def _issue(self, press: Press) -> None:
        service = self.d.buttons[press.button]
        if not self._check_printer().ready:
            self._outcome(TicketOutcome.PRINTER_NOT_READY, {"service": service})
            return
        priority = press.button in self.d.priority_buttons
        issued_at = self.clock.time()
        if not self._ask(service, priority, issued_at):
            self._issue_offline(service, priority, issued_at)

    def _ask(self, service: str, priority: bool, issued_at: float, code: str | None = None) -> bool:
        """Ask central for a number (``code``: an appointment's); False when it cannot be
        asked now (not in contact, not published)."""
        if not self.in_contact:
            return False
        request = TicketRequest(
            request_id=f"{self.device_id}-{secrets.token_hex(8)}",
            service=service,
            priority=priority,
            checkin_code=code,
            issued_at=issued_at,
        )
        if not self.publish(self.queue.request(self.device_id), protocol.encode(request)):
            return False
        deadline = self.clock.monotonic() + self.d.request_timeout
        self._pending = Pending(
            request.request_id, service, priority, issued_at, deadline, checkin=code is not None
        )
        return True

    @property
    def in_contact(self) -> bool:
        """Central reachable and answering: its status online over a live link, and no
        request left unanswered since it last showed signs of life."""
        in_touch = self.online and self.contact.minutes_offline(self.clock.time()) is None
        return in_touch and not self._central_silent

    def _on_ticket_reply(self, reply: TicketReply) -> None:
        pending = self._pending
        if pending is None or reply.request_id != pending.request_id:
            late = self._fell_back.pop(reply.request_id, None) if reply.ok else None
            if late is not None and reply.ticket_id:
                # Already issued offline: give central's number back (once: a redelivered
                # reply finds the request gone).
                self.counters.late_voided += 1
                self.emit(TICKET_VOIDED, {"ticket_id": reply.ticket_id, "reason": "late_reply"})
            return
        self._pending = None
        checkin: dict[str, Any] = {"checkin": True} if pending.checkin else {}
        if not reply.ok or reply.ticket_id is None or reply.number is None:
            if pending.checkin:
                self._outcome(refusal(reply.code), {**checkin, "code": reply.code})
            else:
                detail = {"service": pending.service, "code": reply.code}
                self._outcome(TicketOutcome.REFUSED, detail)
            return
        # A check-in's service is the appointment's, as central says.
        service = reply.service if pending.checkin else pending.service
        ticket = self.face.ticket(
            self.board,
            service,
            reply.number,
            pending.issued_at,
            reply.ahead,
            reply.est_wait_s,
            reply.ticket_id,
            footer=self._appointment_word if pending.checkin else "",
        )
        event = {
            "ticket_id": reply.ticket_id,
            "request_id": pending.request_id,
            "service": service,
            "number": reply.number,
            "business_day": reply.business_day,
            "issued_at": pending.issued_at,
            "priority": pending.priority,
            "offline": False,
            **checkin,
        }
        if self._print_recorded(ticket, event):
            self._outcome(TicketOutcome.ISSUED, event)
        else:
            self.emit(TICKET_VOIDED, {"ticket_id": reply.ticket_id, "reason": "print_failed"})
            self._outcome(TicketOutcome.PRINT_FAILED, {"service": service, **checkin})

    def _issue_offline(self, service: str, priority: bool, issued_at: float) -> None:
        day = DayView.of(self.board)
        line = self._service_line(service)
        number = None if day is None else self.leases.next_number(service, day.day_at(issued_at))
        if day is None or number is None or line is None:
            self._outcome(TicketOutcome.NO_NUMBERS, {"service": service})
            return
        business_day = day.day_at(issued_at)
        text = format_number(line.prefix, number, line.digits)
        ticket_id = f"{business_day}:{service}:{number}"
        ticket = self.face.ticket(
            self.board, service, text, issued_at, line.waiting, line.est_wait_s, ticket_id
        )
        event = {
            "ticket_id": ticket_id,
            "request_id": None,
            "service": service,
            "number": text,
            "business_day": business_day,
            "issued_at": issued_at,
            "priority": priority,
            "offline": True,
        }
        if not self._print_recorded(ticket, event):
            self._outcome(TicketOutcome.PRINT_FAILED, {"service": service})
            return
        self._outcome(TicketOutcome.ISSUED_OFFLINE, event)

    def _print_recorded(self, ticket: TicketSpec, event: dict[str, Any]) -> bool:
        """Print with the ticket held in flight (see controller/leases.py InFlight); on
        success its event (and, offline, the leased number's use) commit together."""
        self.inflight.hold(event)
        if not self._print(ticket):
            self.inflight.release(event["ticket_id"])
            return False
        self._record_printed(event)
        return True

    def _record_printed(self, event: dict[str, Any]) -> None:
        def commit() -> None:
            self.inflight.release(event["ticket_id"])
            if event["offline"]:
                _day, service, number = event["ticket_id"].split(":")
                self.leases.use(service, event["business_day"], int(number))

        self.emit(TICKET_PRINTED, event, extra=commit)

    def _recover_in_flight(self) -> None:
        """Tickets a power cut caught mid-print count as printed (the customer may hold
        one): their numbers are never issued again."""
        for event in self.inflight.left_over():
            logger.warning(
                "ticket %s was printing when the dispenser stopped: counted as printed",
                event["number"],
            )
            self._record_printed({**event, "recovered": True})

    def _service_line(self, service: str) -> Any:
        board = self.board
        if board is None:
            return None
        return next((s for s in board.services if s.service == service), None)

    # ------------------------------------------------------------------ printing

    def _print(self, ticket: TicketSpec) -> bool:
        try:
            self.drivers.printer.print_ticket(ticket)
        except PrintError as err:
            logger.error("ticket %s did not print: %s", ticket.number, err)
            self.set_fault(Fault.PRINTER_FAILED, True)
            self._check_printer()
            return False
        self.set_fault(Fault.PRINTER_FAILED, False)
        return True

    def _check_printer(self) -> PrinterStatus:
        status = self.drivers.printer.status()
        for fault in PRINTER_FAULTS:
            self.set_fault(fault, fault in status.faults)
        return status

    def _outcome(self, code: str, detail: dict[str, Any]) -> None:
        self.counters.outcomes[code] = self.counters.outcomes.get(code, 0) + 1
        if self.indicator is not None:
            self.indicator.signal(code, detail)
        if self.screen is not None:
            self.screen.note_outcome(code, detail, self.clock.monotonic())
        self._on_outcome(code, detail)

    # --------------------------------------------------------- commands, self-check

    def command_handlers(self) -> dict[str, CommandHandler]:
        handlers: dict[str, CommandHandler] = {"print-test": self._cmd_print_test}
        if self.indicator is not None or self.screen is not None:
            handlers["identify"] = self._cmd_identify
        return handlers

    def _cmd_print_test(self, args: PrintTestArgs, now: float) -> CommandOutcome:
        """A test ticket down the customer's path: printer faults raised and cleared."""
        ticket = self.face.ticket(self.board, "TEST", "TEST", now, 0, None, None, args.text)
        if not self._print(ticket):
            return CommandOutcome(
                False,
                CommandCode.FAILED,
                {"reason": "the test ticket did not print", "faults": sorted(self.faults)},
            )
        return CommandOutcome(True, CommandCode.DONE, {"faults": sorted(self.faults)})

    def _cmd_identify(self, args: IdentifyArgs, now: float) -> CommandOutcome:
        """The indicator blinks, and the device id over the touch screen."""
        if self.indicator is not None:
            self.indicator.signal(IDENTIFY_SIGNAL, {"seconds": args.seconds})
        if self.screen is not None:
            self.screen.identify(self.clock.monotonic() + args.seconds)
        return CommandOutcome(True, CommandCode.DONE, {"seconds": args.seconds})

    def self_check(self) -> str | None:
        """The printer must answer (on_housekeeping asks it every second), and the touch
        screen be open when there is one."""
        if Fault.PRINTER_OFFLINE in self.faults:
            return "the printer is offline"
        if self.screen is not None and not self.screen.is_open:
            return "the touch screen did not open"
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            "role": self.role_name,
            "presses": self.counters.presses,
            "scans": self.counters.scans,
            "outcomes": dict(self.counters.outcomes),
            "late_voided": self.counters.late_voided,
            "leases": [b.__dict__ for b in self.leases.blocks()],
            "outbox_depth": self.store.outbox_depth(),
            "faults": sorted(self.faults),
            "screen_frames": None if self.screen is None else self.screen.frames,
        }
