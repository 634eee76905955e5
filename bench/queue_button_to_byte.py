"""Button -> first printer byte at a ticket dispenser, online and offline. Target: p99 <=
300 ms in both.

A real :class:`~controller.dispenser_runtime.DispenserRuntime` runs on its own thread, as
the daemon runs it, with the daemon's store (WAL, synchronous=FULL). Its printer is a
:class:`~drivers.printer_sim.SimPrinter` (the real printers' ESC/POS bytes, TM-T20II
profile, native QR code) whose ``on_write`` stamps ``time.monotonic()`` at the first byte
of each ticket and keeps the time of its last. Central is real too: a
:class:`~central.service.CentralService` in this process (its owner thread, its queue
desk and queue store, synchronous=FULL) with two services and three counters, on a
private Mosquitto.

Presses go in through ``DispenserRuntime.on_press`` (what the button thread calls); the
bench notes ``time.monotonic()`` just before. Latency = first byte - press. Presses come
open loop, one every ``--interval-ms``, alternating the two services. Phases:

- **online**: central answers each ticket request with its number (``IssueTicket``,
  saved durably before the answer), the dispenser prints it;
- **slow printer** (online, optional): every write blocks for the time the bytes take on a
  serial line at ``--baud`` (10 bits a byte), so a ticket occupies the owner thread for as
  long as a real serial printer takes to receive it;
- **central silent** (optional): central's owner thread is held, so its retained status
  still says online but nothing is answered (a hung central, or one cut off from the
  broker until the broker publishes its will): each press waits
  ``dispenser.request_timeout`` (0.8 s by default), then prints a leased number;
- **offline**: central is stopped (``CentralService.stop()``: its retained status turns
  offline), the dispenser loses contact and prints numbers from the blocks it leased
  while online.

A plain paho client also notes when each ticket request and each answer pass the broker,
which splits the online latency into dispenser -> broker, central, and broker -> printer.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from bench import common, queue_common
from central.service import CentralService
from controller.dispenser_runtime import DispenserDrivers, DispenserRuntime
from controller.settings import DeviceConfig
from controller.settings_printer import PrinterSection
from controller.store import DeviceStore
from drivers.printer import PrinterStatus, TicketSpec
from drivers.printer_sim import SimPrinter
from entrada.codes import TicketOutcome
from entrada.protocol import Topics
from entrada.protocol_queue import QueueTopics

TARGET_P99_MS = 300.0
DISPENSER = "disp-1"
#: The dispenser's buttons and the services of central's [queue] (queue_common.QUEUE) they issue.
BUTTONS = {"b1": "A", "b2": "B"}
PRINTED = (str(TicketOutcome.ISSUED), str(TicketOutcome.ISSUED_OFFLINE))
#: Bytes on the line for a serial printer's status check (two queries and their replies).
STATUS_QUERY_BYTES = 8


class TimedPrinter(SimPrinter):
    """A SimPrinter that notes each ticket's first and last byte (monotonic). With
    ``baud`` set, every write blocks for the bytes' time on a serial line, and a status
    check for the two real-time queries a serial printer is asked (``DLE EOT 1`` and
    ``DLE EOT 4``: 3 bytes out and 1 back each; the printer's own reply time is not
    modelled)."""

    def __init__(self, cfg: PrinterSection) -> None:
        super().__init__(cfg, name="bench", on_write=self._chunk)
        self.baud = 0
        self.first: list[float] = []
        self.last: list[float] = []
        self.sizes: list[int] = []
        self._new_ticket = False

    def status(self) -> PrinterStatus:
        if self.baud:
            time.sleep(STATUS_QUERY_BYTES * 10 / self.baud)
        return super().status()

    def print_ticket(self, ticket: TicketSpec) -> None:
        self._new_ticket = True
        super().print_ticket(ticket)
        self.last.append(time.monotonic())
        self.sizes.append(len(self.ticket_bytes[-1]))

    def _chunk(self, chunk: bytes) -> None:
        if self._new_ticket:
            self._new_ticket = False
            self.first.append(time.monotonic())
        if self.baud:
            time.sleep(len(chunk) * 10 / self.baud)


@dataclass
class Outcomes:
    """Every outcome of a press, in order, with the time it was reported (owner thread)."""

    items: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def record(self, code: str, detail: dict[str, Any]) -> None:
        with self.cond:
            self.items.append((str(code), dict(detail), time.monotonic()))
            self.cond.notify_all()

    def wait_count(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.items) >= n, timeout)


class Sniffer:
    """A plain paho client noting when ticket requests and answers pass the broker."""

    def __init__(self, port: int) -> None:
        topics = QueueTopics(Topics(common.SITE))
        self.req_topic = topics.request(DISPENSER)
        self.requests: dict[str, float] = {}
        self.replies: dict[str, float] = {}
        self._subscribed = threading.Event()
        self.client = common.mqtt_client("bench-sniffer")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(self.req_topic, 0), (topics.reply(DISPENSER), 0)])
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("sniffer: no SUBACK")

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        t = time.monotonic()
        rid = json.loads(msg.payload).get("request_id")
        if rid:
            (self.requests if msg.topic == self.req_topic else self.replies)[rid] = t

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def dispenser_config(wd: Path, port: int) -> DeviceConfig:
    """The dispenser as an operator would configure it, with blocks big enough to issue
    the whole offline phase from."""
    dispenser = {
        "site_name": "Town Hall",
        "buttons": BUTTONS,
        "timezone": "Europe/Warsaw",
        "status_url": "https://queue.example.org/t/{ticket}",
        "lease_size": 1000,
        "lease_low": 20,
    }
    return queue_common.queue_device_config(
        wd, port, DISPENSER, "dispenser", dispenser, {"printer": "sim"}
    )


def leased_left(db: Path, service: str, day: str) -> int:
    """Unused leased numbers of ``service`` for ``day``, read from the dispenser's store
    (read-only, beside its owner thread)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        row = conn.execute(
            "SELECT COALESCE(SUM(last - next + 1), 0) FROM queue_leases "
            "WHERE service = ? AND business_day = ?",
            (service, day),
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def press_paced(
    rt: DispenserRuntime, outcomes: Outcomes, n: int, interval: float
) -> tuple[list[float], int]:
    """``n`` presses, open loop, one every ``interval``; returns their times and the index
    of the first one's outcome. Waits for every outcome."""
    base = len(outcomes.items)
    buttons = sorted(BUTTONS)
    times: list[float] = []
    start = time.monotonic()
    for i in range(n):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        times.append(time.monotonic())
        rt.on_press(buttons[i % len(buttons)])
    if not outcomes.wait_count(base + n, 60):
        raise RuntimeError(f"{base + n - len(outcomes.items)} presses had no outcome in 60 s")
    return times, base


def silent_central(
    service: CentralService, rt: DispenserRuntime, outcomes: Outcomes, n: int
) -> tuple[list[float], int]:
    """Presses while central's retained status says online but its owner thread answers
    nothing (hung, or cut off from the broker before the broker publishes its will): each
    press waits ``dispenser.request_timeout``, then prints a leased number. Central's late
    numbers are voided by the dispenser once it answers again."""
    release = threading.Event()

    def stall() -> None:
        release.wait(n + 30.0)

    def block() -> None:
        with contextlib.suppress(TimeoutError):
            service.on_owner(stall, timeout=n + 40.0)

    blocker = threading.Thread(target=block, name="central-stall", daemon=True)
    blocker.start()
    time.sleep(0.2)  # the owner thread has taken the call
    try:
        return press_paced(rt, outcomes, n, 1.0)
    finally:
        release.set()
        blocker.join(10)
        time.sleep(1.0)  # central answers the late requests; the dispenser voids them


def summarise(
    times: list[float],
    base: int,
    outcomes: Outcomes,
    printer: TimedPrinter,
    sniffer: Sniffer | None,
) -> dict[str, Any]:
    """Join presses, outcomes and the printer's stamps (presses are served in order, and
    only the printed outcomes printed)."""
    printed_before = sum(1 for c, _d, _t in outcomes.items[:base] if c in PRINTED)
    first, last, done, sizes = [], [], [], []
    to_broker, central, to_printer = [], [], []
    codes: dict[str, int] = {}
    k = printed_before
    for i, t in enumerate(times):
        code, detail, at = outcomes.items[base + i]
        codes[code] = codes.get(code, 0) + 1
        done.append(at - t)
        if code not in PRINTED:
            continue
        first.append(printer.first[k] - t)
        last.append(printer.last[k] - t)
        sizes.append(printer.sizes[k])
        rid = detail.get("request_id")
        if sniffer is not None and rid in sniffer.requests and rid in sniffer.replies:
            to_broker.append(sniffer.requests[rid] - t)
            central.append(sniffer.replies[rid] - sniffer.requests[rid])
            to_printer.append(printer.first[k] - sniffer.replies[rid])
        k += 1
    out: dict[str, Any] = {
        "press_to_first_byte": common.stats_ms(first),
        "press_to_last_byte": common.stats_ms(last),
        "press_to_outcome": common.stats_ms(done),
        "outcomes": codes,
        "ticket_bytes": {"min": min(sizes), "max": max(sizes)} if sizes else {},
    }
    if to_broker:
        out["press_to_request_at_broker"] = common.stats_ms(to_broker)
        out["request_to_answer_at_broker"] = common.stats_ms(central)
        out["answer_at_broker_to_first_byte"] = common.stats_ms(to_printer)
    return out


def print_phase(name: str, s: dict[str, Any]) -> None:
    print(f"-- {name}: outcomes {s['outcomes']}, ticket {s['ticket_bytes']} bytes")
    rows = [("press -> first printer byte", "press_to_first_byte")]
    if "press_to_request_at_broker" in s:
        rows += [
            ("  press -> request at broker", "press_to_request_at_broker"),
            ("  central (request -> answer)", "request_to_answer_at_broker"),
            ("  answer -> first byte", "answer_at_broker_to_first_byte"),
        ]
    rows += [
        ("press -> last byte (ticket sent)", "press_to_last_byte"),
        ("press -> outcome (event committed)", "press_to_outcome"),
    ]
    common.print_stats(s, rows)


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=1000, help="presses per phase")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--interval-ms", type=float, default=50.0, help="one press every this many ms"
    )
    parser.add_argument(
        "--baud", type=int, default=19200, help="slow-printer phase line speed (0: skip it)"
    )
    parser.add_argument("--baud-presses", type=int, default=100)
    parser.add_argument("--baud-interval-ms", type=float, default=300.0)
    parser.add_argument(
        "--silent-presses",
        type=int,
        default=10,
        help="presses while central is up but does not answer, one a second (0: skip)",
    )
    args = parser.parse_args()
    if args.quick:
        args.presses, args.warmup, args.baud_presses, args.silent_presses = 60, 5, 10, 3
    m = common.start(
        "queue: button -> first printer byte",
        expected=("controller.store", "central.config_publisher"),  # a fresh store, no key
    )
    interval = args.interval_ms / 1000

    with (
        common.workdir("queue-press", args.keep) as wd,
        queue_common.queue_site(wd) as (broker, service),
    ):
        rt: DispenserRuntime | None = None
        thread: threading.Thread | None = None
        sniffer: Sniffer | None = None
        try:
            sniffer = Sniffer(broker.port)
            cfg = dispenser_config(wd, broker.port)
            printer = TimedPrinter(cfg.drivers.escpos)
            outcomes = Outcomes()
            store = DeviceStore(cfg.device.data_dir / "device.db")
            db = store.path
            rt = DispenserRuntime(
                cfg, DispenserDrivers(printer=printer), store, on_outcome=outcomes.record
            )
            thread = threading.Thread(target=rt.run, name="dispenser-owner", daemon=True)
            thread.start()
            if not common.wait_until(lambda: rt is not None and rt.in_contact, 20):
                raise RuntimeError("the dispenser did not reach central")
            if not common.wait_until(lambda: rt is not None and rt.board is not None, 20):
                raise RuntimeError("the dispenser got no board")
            assert rt.board is not None
            day = rt.board.business_day
            wanted = (args.presses + 1) // 2 + 20
            if not common.wait_until(
                lambda: all(leased_left(db, s, day) >= wanted for s in BUTTONS.values()), 20, 0.1
            ):
                raise RuntimeError("the dispenser did not lease its blocks")

            press_paced(rt, outcomes, args.warmup, interval)
            times, base = press_paced(rt, outcomes, args.presses, interval)
            online = summarise(times, base, outcomes, printer, sniffer)

            slow: dict[str, Any] | None = None
            if args.baud:
                printer.baud = args.baud
                times, base = press_paced(
                    rt, outcomes, args.baud_presses, args.baud_interval_ms / 1000
                )
                printer.baud = 0
                slow = summarise(times, base, outcomes, printer, sniffer)

            silent: dict[str, Any] | None = None
            if args.silent_presses:
                times, base = silent_central(service, rt, outcomes, args.silent_presses)
                silent = summarise(times, base, outcomes, printer, None)

            service.stop()  # its retained status turns offline
            if not common.wait_until(lambda: rt is not None and not rt.in_contact, 20):
                raise RuntimeError("the dispenser did not notice central going away")
            time.sleep(0.5)  # the status and the outbox's first failed send settle
            times, base = press_paced(rt, outcomes, args.presses, interval)
            offline = summarise(times, base, outcomes, printer, None)
        finally:
            if rt is not None:
                rt.request_stop("benchmark over")
            if thread is not None:
                thread.join(15)
            if sniffer is not None:
                sniffer.close()
    counters = {
        "presses": rt.counters.presses,
        "outcomes": dict(rt.counters.outcomes),
        "late_voided": rt.counters.late_voided,
    }

    print(
        f"   {args.presses:,} presses per phase, one every {args.interval_ms:g} ms "
        f"(services A and B in turn), after {args.warmup} warm-up presses"
    )
    print_phase("online (central gives the number)", online)
    if slow is not None:
        print_phase(
            f"online, printer at {args.baud} baud ({args.baud_presses} presses, one every "
            f"{args.baud_interval_ms:g} ms)",
            slow,
        )
    if silent is not None:
        print_phase(
            f"central online but silent ({args.silent_presses} presses, one a second; "
            f"request_timeout {cfg.dispenser.request_timeout:g} s)",
            silent,
        )
    print_phase("offline (central stopped: leased numbers)", offline)
    ok_on = (
        online["press_to_first_byte"].get("n") == args.presses
        and online["press_to_first_byte"]["p99"] <= TARGET_P99_MS
    )
    ok_off = (
        offline["press_to_first_byte"].get("n") == args.presses
        and offline["press_to_first_byte"]["p99"] <= TARGET_P99_MS
    )
    for name, s, ok in (("online", online, ok_on), ("offline", offline, ok_off)):
        print(
            f"   target: {name} press -> first byte p99 <= {TARGET_P99_MS:g} ms: "
            f"{s['press_to_first_byte'].get('p99')} ms -> {common.verdict(ok)}"
        )
    common.emit(
        "queue_button_to_byte",
        m,
        {
            "presses_per_phase": args.presses,
            "interval_ms": args.interval_ms,
            "warmup": args.warmup,
            "baud": args.baud,
            "baud_presses": args.baud_presses,
            "baud_interval_ms": args.baud_interval_ms,
            "silent_presses": args.silent_presses,
            "printer_profile": "TM-T20II",
            "quick": args.quick,
        },
        {
            "online": online,
            "slow_printer": slow,
            "central_silent": silent,
            "offline": offline,
            "dispenser": counters,
        },
        {
            "online_press_to_first_byte_p99_le_300ms": ok_on,
            "offline_press_to_first_byte_p99_le_300ms": ok_off,
        },
    )


if __name__ == "__main__":
    main()
