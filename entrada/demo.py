"""``entrada demo``: a whole simulated site, live.

A private Mosquitto, the central service, an entry and an exit gate on simulated
hardware deciding with the rules engine, a service office (a ticket dispenser, a display
board and three counters calling: see entrada/demo_queue.py), and a scripted stream of
visitors: most hold a one-hour ticket (adult or child, overtime per started quarter
after 45 minutes) on a wristband with a deposit, some wristbands are blocked, lost or
unknown, a few tap twice in a row (the gate must count that once). Some visitors run up
a bar tab while inside. The gates' clocks run :data:`SPEED` times faster than real time,
so stays of minutes happen in seconds and overtime is common. An exit refused for what
is owed sends the visitor to pay (the kiosk is the demo itself, through central) and
back to the exit. With ``--chaos`` the broker and central are SIGKILLed and restarted at
random moments. At the end the outboxes drain and the summary compares what the gates
emitted with what central stored: ``events_lost`` and ``events_duplicated`` must be 0;
``charges_total`` is what the exits settled and ``exits_refused_owing`` how often one
stayed shut.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from entrada.demo_queue import CUSTOMER_SHARE, Office, queue_setup
from entrada.errors import EntradaError
from entrada.site import GateSpec
from entrada.site_queue import QueueSite

logger = logging.getLogger(__name__)

STATUSES = [("active", 0.88), ("blocked", 0.04), ("lost", 0.03), ("expired", 0.02)]
UNKNOWN_SHARE = 0.03
DOUBLE_TAP_SHARE = 0.05
TAB_SHARE = 0.3  # visitors who order at the bar while inside
CHILD_SHARE = 0.25
DEPOSIT_MINOR = 1000
#: Simulated seconds per real second on the gates' clocks.
SPEED = 60.0
RULES: dict[str, Any] = {
    "site": {"id": "demo", "tz": "Europe/Warsaw", "currency": "PLN"},
    "zones": [{"id": "facility", "capacity": 5000}, {"id": "pool", "parent": "facility"}],
    "tariffs": [
        {
            "id": "1h",
            "name": "One hour, then overtime",
            "zones": ["facility", "pool"],
            "entries": 1,
            "stay": {
                "facility": {
                    "included_minutes": 45,
                    "interval_minutes": 15,
                    "grace_minutes": 3,
                    "rate": {"prices": {"adult": 600, "child": 300}},
                }
            },
            "offline": {"after_minutes": 30, "mode": "admit", "budget": 1},
        }
    ],
}
EXIT_OUTCOMES = ("granted", "granted.unmatched_exit", "denied.owing")
EXPECTED = {
    "active": "granted",
    "blocked": "denied.blocked",
    "lost": "denied.lost",
    "expired": "denied.expired",
    None: "denied.unknown",
}


@dataclass
class Visitor:
    uid: str
    status: str | None  # None: not in the catalog


@dataclass
class Tally:
    taps: int = 0
    double_taps: int = 0
    expected: Counter[str] = field(default_factory=Counter)
    chaos: list[str] = field(default_factory=list)
    posted_minor: int = 0
    paid_minor: int = 0


def make_visitors(rng: random.Random, n: int) -> list[Visitor]:
    visitors = []
    for i in range(n):
        uid = f"04{i:08X}{rng.getrandbits(16):04X}"
        if rng.random() < UNKNOWN_SHARE:
            visitors.append(Visitor(uid, None))
            continue
        r, acc = rng.random(), 0.0
        status = "active"
        for name, share in STATUSES:
            acc += share
            if r < acc:
                status = name
                break
        visitors.append(Visitor(uid, status))
    return visitors


class Demo:
    def __init__(self, args: argparse.Namespace, out: Any = sys.stdout) -> None:
        self.args = args
        self.out = out
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.tally = Tally()
        self._own_workdir = args.workdir is None
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="entrada-demo-"))
        self.site = QueueSite(
            workdir,
            queue_setup(time.time(), SPEED),
            gates=[
                GateSpec("gate-in", "in", admission="tariffs", clock="sim", zone_to="pool"),
                GateSpec(
                    "gate-out",
                    "out",
                    admission="tariffs",
                    clock="sim",
                    zone_from="pool",
                    collects_media=True,
                ),
            ],
            debounce=5.0,  # simulated seconds: the gates' clocks run SPEED times faster
            relay_pulse=0.3,
            log_level="WARNING",
        )
        self.visitors = make_visitors(self.rng, max(200, int(args.duration * args.rate)))
        self.office = Office(self.site, random.Random(self.rng.random()), self.site.sim_now)
        self._seen_refusals: set[tuple[str, int]] = set()
        self._sim_start = time.time()
        self._real_start = time.monotonic()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # ----------------------------------------------------------------- phases

    def run(self) -> dict[str, Any]:
        site = self.site
        self.say(f"Entrada demo: site files in {site.workdir}")
        site.start()
        self.say(
            f"  broker on 127.0.0.1:{site.broker.port}, central, 2 gates, a ticket "
            "dispenser and a display board running"
        )
        self.office.start()
        rows = [
            (v.uid, v.status, f"Visitor {i}")
            for i, v in enumerate(self.visitors)
            if v.status is not None
        ]
        head = self._seed_catalog()
        site.wait_catalog(head, timeout=60)
        self._sim_start, self._real_start = time.time(), time.monotonic()
        site.set_time(self._sim_start, SPEED)
        self.say(
            f"  catalog v{head}: rules, {len(rows)} wristbands with tickets published to "
            f"both gates; their clocks run {SPEED:.0f}x"
        )
        chaos = None
        if self.args.chaos:
            chaos = threading.Thread(target=self._chaos, name="chaos", daemon=True)
            chaos.start()
        started = time.monotonic()
        self._visitors(started)
        self.stop.set()
        if chaos is not None:
            chaos.join(timeout=30)
        self._ensure_up()
        self.say("  customers done; the counters serve whoever still waits ...")
        self.office.stop(drain_for=60)
        # The boards confirm the last calls first: their events are the last to be made.
        office = self.office.summary()
        self.say("  visitors done; waiting for the devices' outboxes to drain ...")
        drained = site.wait_drained(timeout=90)
        summary = self._summary(time.monotonic() - started, drained)
        summary.update(office)
        return summary

    def _seed_catalog(self) -> int:
        """Rules, wristbands (with a deposit) and a ticket for every valid wristband."""
        from central.admin import set_wristbands
        from central.admin_catalog import import_entitlements_csv, publish_rules

        db = self.site.central_db()
        known = [(i, v) for i, v in enumerate(self.visitors) if v.status is not None]
        publish_rules(db, RULES)
        set_wristbands(
            db,
            [(v.uid, v.status, f"Visitor {i}", None, "secure", DEPOSIT_MINOR) for i, v in known],
        )
        tickets = io.StringIO()
        tickets.write("id,uid,tariff_id,concession,valid_from,valid_to\n")
        for i, v in known:
            child = self.rng.random() < CHILD_SHARE
            tickets.write(f"T{i},{v.uid},1h,{'child' if child else 'adult'},,\n")
        tickets.seek(0)
        return import_entitlements_csv(db, tickets)

    def sim_now(self) -> float:
        """The gates' wall time now (they run SPEED times faster)."""
        return self._sim_start + (time.monotonic() - self._real_start) * SPEED

    def _visitors(self, started: float) -> None:
        """Each visitor taps in at the entry gate; some later tap out at the exit."""
        interval = 1.0 / self.args.rate
        inside: list[Visitor] = []
        queue = list(self.visitors)
        next_report = started + (5.0 if self.args.headless else 1.0)
        n = 0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - started >= self.args.duration:
                break
            if inside and (not queue or self.rng.random() < 0.45):
                v = inside.pop(self.rng.randrange(len(inside)))
                self._tap("gate-out", v, exiting=True)
            elif queue:
                v = queue.pop()
                self._tap("gate-in", v)
                if v.status == "active":
                    inside.append(v)
                    if self.rng.random() < TAB_SHARE:
                        self._order_at_the_bar(v)
            if self.rng.random() < CUSTOMER_SHARE:
                self.office.customer()
            n += 1
            if now >= next_report:
                inside.extend(self._pay_refused_exits())
                self._progress(now - started)
                next_report = now + (5.0 if self.args.headless else 1.0)
            self.stop.wait(max(0.0, started + n * interval - time.monotonic()))

    def _tap(self, gate: str, v: Visitor, exiting: bool = False) -> None:
        try:
            self.site.tap(gate, v.uid)
        except EntradaError as err:
            self.say(f"  ! tap at {gate} failed: {err}")
            return
        self.tally.taps += 1
        if not exiting:
            self.tally.expected[EXPECTED[v.status]] += 1
        if self.rng.random() < DOUBLE_TAP_SHARE:
            self.site.tap(gate, v.uid)  # the same wristband again at once: one tap
            self.tally.taps += 1
            self.tally.double_taps += 1

    def _order_at_the_bar(self, v: Visitor) -> None:
        """A point of sale posts a drink or a snack to the wristband's tab (via central)."""
        from central.admin_catalog import TabRefused, post_to_tab

        amount = self.rng.choice([450, 800, 1250, 1900])
        try:
            post_to_tab(
                self.site.central_db(), v.uid, amount, description="bar", now=self.sim_now()
            )
        except (TabRefused, EntradaError) as err:
            self.say(f"  ! bar posting for {v.uid} refused: {err}")
            return
        self.tally.posted_minor += amount

    def _pay_refused_exits(self) -> list[Visitor]:
        """Visitors the exit refused for what they owed pay it (a kiosk) and go back to
        the exit; returns them."""
        from central.admin_catalog import pay_tab

        by_uid = {v.uid: v for v in self.visitors}
        back: list[Visitor] = []
        for uid, seq, due in self._refusals():
            if (uid, seq) in self._seen_refusals:
                continue
            self._seen_refusals.add((uid, seq))
            try:
                pay_tab(self.site.central_db(), uid, due, method="kiosk", now=self.sim_now())
            except EntradaError as err:
                self.say(f"  ! payment for {uid} failed: {err}")
                continue
            self.tally.paid_minor += due
            back.append(by_uid[uid])
        return back

    def _refusals(self) -> list[tuple[str, int, int]]:
        """``(uid, seq, due)`` of every exit refused for owing that central holds."""
        refused = []
        for e in self.site.central_events(kind="gate.denied", device="gate-out"):
            decision = e["data"].get("decision") or {}
            if e["data"].get("outcome") == "denied.owing" and decision.get("due_minor"):
                refused.append((e["data"]["uid"], e["seq"], int(decision["due_minor"])))
        return refused

    def _chaos(self) -> None:
        site = self.site
        while not self.stop.wait(self.rng.uniform(4, 10)):
            victim = self.rng.choice(["broker", "central"])
            down = self.rng.uniform(1, 4)
            self.tally.chaos.append(f"{victim} killed for {down:.1f}s")
            self.say(f"  ~ chaos: SIGKILL {victim}, back in {down:.1f}s")
            if victim == "broker":
                site.broker.kill()
                self.stop.wait(down)
                site.broker.start()
            else:
                site.kill("central")
                self.stop.wait(down)
                site.start_central()

    def _ensure_up(self) -> None:
        if not self.site.broker.running:
            self.site.broker.start()
        if not self.site.alive("central"):
            self.site.start_central()

    def _progress(self, elapsed: float) -> None:
        states = {g.id: self.site.gate_state(g.id) for g in self.site.gates}
        outbox = sum(s["outbox"] for s in states.values())
        emitted = sum(s["emitted"] for s in states.values())
        line = (
            f"  t={elapsed:5.1f}s taps={self.tally.taps:5d} events={emitted:5d} "
            f"awaiting-ack={outbox:5d} broker={'up' if self.site.broker.running else 'DOWN'}"
            f" central={'up' if self.site.alive('central') else 'DOWN'}"
        )
        self.say(line)

    # ---------------------------------------------------------------- summary

    def _summary(self, elapsed: float, drained: bool) -> dict[str, Any]:
        ledger = self.site.ledger()
        events = self.site.central_events()
        decided = [e for e in events if e["kind"] in ("gate.passage", "gate.denied")]
        entries = Counter(e["data"].get("outcome", "") for e in decided if e["device"] == "gate-in")
        exits = Counter(e["data"].get("outcome", "") for e in decided if e["device"] == "gate-out")
        granted = sum(v for k, v in entries.items() if k.startswith("granted"))
        denied = sum(v for k, v in (entries + exits).items() if k.startswith("denied"))
        mismatched = sum(abs(entries.get(k, 0) - n) for k, n in self.tally.expected.items())
        mismatched += sum(v for k, v in exits.items() if k not in EXIT_OUTCOMES)
        settled = [
            e["data"]["decision"]
            for e in decided
            if e["kind"] == "gate.passage" and (e["data"].get("passage") or {}).get("settled")
        ]
        return {
            "charges_total": sum(c["amount_minor"] for d in settled for c in d["charges"]),
            "exits_refused_owing": exits.get("denied.owing", 0),
            "exits": sum(v for k, v in exits.items() if k.startswith("granted")),
            "posted_total": self.tally.posted_minor,
            "paid_total": self.tally.paid_minor,
            "taps": self.tally.taps,
            "double_taps": self.tally.double_taps,
            "granted": granted,
            "denied": denied,
            "expected_granted": self.tally.expected.get("granted", 0),
            "decisions_mismatched": mismatched,
            **ledger,
            "drained": drained,
            "chaos_events": len(self.tally.chaos),
            "duration_s": round(elapsed, 1),
        }

    def close(self) -> None:
        self.stop.set()
        self.site.stop()
        if self._own_workdir and not self.args.keep:
            shutil.rmtree(self.site.workdir, ignore_errors=True)


VERDICT_OK = "every event reached central exactly once, no number twice, every call confirmed"


def render(summary: dict[str, Any]) -> str:
    ok = healthy(summary)
    return "\n".join(
        [
            "",
            "Summary",
            f"  taps                {summary['taps']:>7}  ({summary['double_taps']} double taps "
            "counted once)",
            f"  granted             {summary['granted']:>7}  "
            f"(expected {summary['expected_granted']})",
            f"  denied              {summary['denied']:>7}",
            f"  exits               {summary['exits']:>7}  "
            f"({summary['exits_refused_owing']} refused until paid)",
            f"  charges settled     {summary['charges_total'] / 100:>10.2f} PLN  "
            f"(at final exits; bar orders posted {summary['posted_total'] / 100:.2f}, "
            f"paid at the kiosk {summary['paid_total'] / 100:.2f})",
            f"  decisions off-script{summary['decisions_mismatched']:>7}",
            f"  events emitted      {summary['events_emitted']:>7}",
            f"  events stored       {summary['events_stored']:>7}",
            f"  events lost         {summary['events_lost']:>7}",
            f"  events duplicated   {summary['events_duplicated']:>7}",
            f"  tickets issued      {summary['tickets_issued']:>7}  "
            f"({summary['tickets_offline']} from leased numbers while central was away)",
            f"  tickets called      {summary['tickets_called']:>7}",
            f"  duplicate numbers   {summary['duplicate_numbers']:>7}",
            f"  calls unconfirmed   {summary['calls_unconfirmed']:>7}",
            f"  chaos events        {summary['chaos_events']:>7}",
            f"  verdict: {VERDICT_OK if ok else 'SOMETHING WENT WRONG'}",
        ]
    )


def run_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "keep"):
        args.keep = args.workdir is not None
    demo = Demo(args)

    interrupted = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # First Ctrl-C or SIGTERM: unwind to the clean stop below. Later ones are ignored
        # so the site is never left half stopped. Installed explicitly for SIGINT too: a
        # shell starting us in the background may have set SIGINT to "ignore".
        demo.stop.set()
        if not interrupted.is_set():
            interrupted.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        summary = demo.run()
    except KeyboardInterrupt:
        demo.say("\n  interrupted: stopping the site ...")
        demo.close()
        return 130
    except EntradaError as err:
        demo.say(f"demo failed: {err}")
        demo.close()
        return 1
    demo.close()
    demo.say(render(summary))
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if healthy(summary) else 1


def healthy(summary: dict[str, Any]) -> bool:
    """No event lost or doubled, no number issued twice, every call confirmed."""
    return (
        summary["events_lost"] == 0
        and summary["events_duplicated"] == 0
        and summary["duplicate_numbers"] == 0
        and summary["calls_unconfirmed"] == 0
    )
