"""The demo's service office: a ticket dispenser, a display board and counters calling.

Customers press a service button on the dispenser (a simulated printer prints the
ticket), staff at three counters call the next ticket, serve it for a few simulated
minutes and sometimes recall one that does not come (the second recall makes it a
no-show). Central owns the queue; the board shows and announces every call and confirms
it. When central is away (``--chaos``), the dispenser issues from its leased numbers and
the counters retry their operation with the same op id.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from entrada.errors import EntradaError
from entrada.site_queue import DispenserSpec, QueueSetup, QueueSite, Staff, queue_rows

logger = logging.getLogger(__name__)

SERVICES: list[dict[str, Any]] = [
    {"id": "A", "name": "General matters", "prefix": "A", "first": 1, "last": 999},
    {"id": "B", "name": "Passports", "prefix": "B", "first": 1, "last": 999},
]
COUNTERS: list[dict[str, Any]] = [
    {"id": "c1", "name": "1", "services": {"A": 1}},
    {"id": "c2", "name": "2", "services": {"A": 1, "B": 1}},
    {"id": "c3", "name": "3", "services": {"B": 1}},
]
DISPENSER = "disp-1"
BOARD = "board-1"
CUSTOMER_SHARE = 0.5  # of the demo's visitor rate, customers at the dispenser
NO_SHOW_SHARE = 0.05


def queue_setup(origin: float, speed: float) -> QueueSetup:
    return QueueSetup(
        queue={
            "site_name": "Entrada demo office",
            "timezone": "Europe/Warsaw",
            "max_recalls": 1,
            "services": SERVICES,
            "counters": COUNTERS,
        },
        origin=origin,
        speed=speed,
        displays=[BOARD],
        dispensers=[DispenserSpec(DISPENSER, {"a": "A", "b": "B"})],
        clip_seconds=0.05,
    )


@dataclass
class _Counter:
    id: str
    ticket: str | None = None
    done_at: float = 0.0
    pending: tuple[str, str] | None = None  # (op, op_id) waiting for central
    recalled: bool = False


class Office:
    """Customers and counters, driven from their own thread until :meth:`stop`."""

    def __init__(self, site: QueueSite, rng: random.Random, sim_now: Callable[[], float]) -> None:
        self.site = site
        self.rng = rng
        self.sim_now = sim_now
        self.presses = 0
        self.staff: Staff | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="office", daemon=True)
        self._counters = [_Counter(c["id"]) for c in COUNTERS]

    def start(self) -> None:
        self.staff = Staff(self.site.site_id, self.site.broker.port, name="demo-staff")
        for c in self._counters:
            self._until_answered("sign_in", f"sign-in-{c.id}", counter=c.id, staff=f"staff-{c.id}")
        self._thread.start()

    def customer(self) -> None:
        """A customer takes a ticket (called from the demo's visitor loop)."""
        try:
            self.site.press(DISPENSER, self.rng.choice(["a", "b"]))
            self.presses += 1
        except EntradaError as err:
            logger.warning("dispenser press failed: %s", err)

    def stop(self, drain_for: float) -> None:
        """Serve whoever still waits (at most ``drain_for`` real seconds), then stop."""
        deadline = time.monotonic() + drain_for
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.2)
        self._stop.set()
        self._thread.join(10)
        if self.staff is not None:
            self.staff.close()

    def _busy(self) -> bool:
        if any(c.ticket or c.pending for c in self._counters):
            return True
        board = self.staff.op("board", timeout=2.0) if self.staff else None
        return board is None or any(s["waiting"] for s in board.result["board"]["services"])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for counter in self._counters:
                try:
                    self._work(counter)
                except EntradaError as err:
                    logger.warning("counter %s: %s", counter.id, err)

    def _work(self, c: _Counter) -> None:
        now = self.sim_now()
        if c.pending is None:
            if c.ticket is None:
                c.pending = ("call_next", f"{c.id}-{secrets.token_hex(6)}")
            elif now >= c.done_at:
                recall = not c.recalled and self.rng.random() < NO_SHOW_SHARE
                c.recalled = c.recalled or recall
                op = "recall" if recall else "finish_service"
                c.pending = (op, f"{c.id}-{secrets.token_hex(6)}")
            else:
                return
        op, op_id = c.pending
        assert self.staff is not None
        answer = self.staff.op(op, op_id=op_id, timeout=1.0, counter=c.id)
        if answer is None:
            return  # central away: the same op id goes again next time
        c.pending = None
        if op == "call_next":
            if answer.ok:
                c.ticket = answer.result["ticket"]["id"]
                c.done_at = now + self.rng.uniform(120, 420)
                c.recalled = False
        elif op == "recall" and answer.ok and answer.code != "queue.no_show.recalls":
            c.done_at = now + 60
        else:
            c.ticket = None

    def _until_answered(self, op: str, op_id: str, **args: Any) -> None:
        assert self.staff is not None
        for _ in range(30):
            if self.staff.op(op, op_id=op_id, timeout=2.0, **args) is not None:
                return
        raise EntradaError(f"central never answered {op}")

    # ---------------------------------------------------------------- summary

    def summary(self) -> dict[str, Any]:
        """tickets_issued, tickets_called, duplicate_numbers, calls_unconfirmed."""
        printed = self.site.printed_events()
        ids = [e["ticket_id"] for e in printed]
        db = self.site.queue_db()
        calls = queue_rows(db, "SELECT COUNT(*) FROM entities WHERE kind = 'call'")[0][0]
        refused_duplicates = queue_rows(
            db, "SELECT COUNT(*) FROM entities WHERE kind = 'duplicate'"
        )[0][0]
        unconfirmed = None
        staff = Staff(self.site.site_id, self.site.broker.port, name="demo-report")
        try:
            for _ in range(20):
                answer = staff.op("unconfirmed", timeout=2.0)
                if answer is not None and not answer.result["calls"]:
                    unconfirmed = 0
                    break
                unconfirmed = None if answer is None else len(answer.result["calls"])
                time.sleep(0.5)
        finally:
            staff.close()
        return {
            "tickets_pressed": self.presses,
            "tickets_issued": len(set(ids)),
            "tickets_offline": sum(1 for e in printed if e.get("offline")),
            "tickets_called": int(calls),
            "duplicate_numbers": (len(ids) - len(set(ids))) + int(refused_duplicates),
            "calls_unconfirmed": -1 if unconfirmed is None else unconfirmed,
        }
