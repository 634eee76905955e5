"""A simulated office day: 3 dispensers, 5 counters, 2 display boards, 500 customers.

Every part is a real daemon against a real Mosquitto, on one simulated time line running
300 times real time. Central is SIGKILLed and restarted once mid-day; one dispenser is cut
off the network for 20 simulated minutes. Staff at the counters call, serve, recall and
no-show through MQTT 5 operations, retrying with the same op id when central is away.

At the end: no number was issued twice anywhere, every ticket was served, cancelled or
no-showed, and every call was confirmed by both display boards.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from entrada.site_queue import DispenserSpec, QueueSetup, QueueSite, Staff
from kiosk_ui.voice_clips import clip_path, write_silence
from kiosk_ui.words import spoken_texts

pytestmark = pytest.mark.scenario

SPEED = 300.0  # simulated seconds per real second
CUSTOMERS = 500
TERMINAL = {"done", "cancelled", "no_show"}  # served, cancelled or no-showed
ORIGIN = datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()

QUEUE = {
    "site_name": "Urząd Miasta",
    "timezone": "Europe/Warsaw",
    "day_boundary": "04:00",
    "max_recalls": 1,
    "confirm_grace": 30.0,
    "lease_size": 60,
    "services": [
        {"id": "A", "name": "Sprawy ogólne", "prefix": "A", "first": 1, "last": 999},
        {"id": "B", "name": "Paszporty", "prefix": "B", "first": 1, "last": 999},
        {"id": "C", "name": "Podatki", "prefix": "C", "first": 1, "last": 999},
    ],
    "counters": [
        {"id": "c1", "name": "1", "services": {"A": 1}},
        {"id": "c2", "name": "2", "services": {"A": 1, "B": 1}},
        {"id": "c3", "name": "3", "services": {"B": 1}},
        {"id": "c4", "name": "4", "services": {"C": 1, "A": 1}},
        {"id": "c5", "name": "5", "services": {"C": 1, "B": 1}},
    ],
}
BUTTONS = {"a": "A", "b": "B", "c": "C"}
DISPENSERS = ["disp-1", "disp-2", "disp-3"]


@dataclass
class Desk:
    """One counter as its staff work it."""

    counter: str
    ticket: str | None = None
    served_at: float = 0.0  # simulated time the customer leaves
    pending: tuple[str, str, dict[str, str]] | None = None  # (op, op_id, args) to retry
    recalled: bool = False


def make_clips(root: Path) -> None:
    """20 ms clips where kiosk_ui.voice_clips would put them, so boards really 'play'."""
    write_silence(root / "chime.wav", seconds=0.02)
    write_silence(root / "pause.wav", seconds=0.02)
    for piece in spoken_texts("en", max_number=12):
        target = clip_path(root, "en", piece)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_silence(target, seconds=0.02)


def test_a_day_at_the_office(tmp_path: Path) -> None:
    rnd = random.Random(7)
    setup = QueueSetup(
        queue=QUEUE,
        origin=ORIGIN,
        speed=SPEED,
        displays=["board-1", "board-2"],
        dispensers=[
            DispenserSpec(d, BUTTONS, cut_off_able=(d == "disp-3"), lease_size=60)
            for d in DISPENSERS
        ],
        # A day in minutes calls ~9 a second: announcements must keep up (a real office
        # calls every few seconds, with clips of half a second).
        clip_seconds=0.005,
        announce_gap=0.0,
    )
    make_clips(tmp_path / "site" / "voice")
    with QueueSite(tmp_path / "site", setup, site_id="office") as site:
        staff = Staff("office", site.broker.port)
        try:
            run_the_day(site, staff, rnd)
            check_the_day(site, staff)
        finally:
            staff.close()


def op_until_answered(client: Staff, op: str, op_id: str, **args: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.op(op, op_id=op_id, timeout=2.0, **args)
        if answer is not None:
            return answer
    raise AssertionError(f"{op} {op_id} never answered")


def run_the_day(site: QueueSite, staff: Staff, rnd: random.Random) -> None:
    desks = [Desk(f"c{i}") for i in range(1, 6)]
    for i, desk in enumerate(desks):
        answer = op_until_answered(
            staff, "sign_in", f"sign-in-{desk.counter}", counter=desk.counter, staff=f"s{i}"
        )
        assert answer.ok, answer
    # Leases first: every dispenser holds blocks before anything can go wrong.
    site._wait(lambda: all(_leased(site, d) for d in DISPENSERS), 30, "leases")

    pressed = 0
    next_press = {d: 0.0 for d in DISPENSERS}
    central_restarted = cut_done = False
    cut_until: float | None = None
    started = time.monotonic()
    while pressed < CUSTOMERS or any(d.ticket or d.pending for d in desks) or _waiting(staff):
        mono = time.monotonic()
        assert mono - started < 400, "the day did not end"
        # Customers arrive: one press per dispenser at most every 0.12 s real.
        for d in DISPENSERS:
            if pressed < CUSTOMERS and mono >= next_press[d]:
                site.press(d, rnd.choice(sorted(BUTTONS)))
                pressed += 1
                next_press[d] = mono + rnd.uniform(0.12, 0.3)
        # Central dies a third of the way through the day, and comes back.
        if not central_restarted and pressed >= CUSTOMERS // 3:
            central_restarted = True
            site.kill("central")
            time.sleep(1.0)  # 5 simulated minutes without central
            site.start_central()
        # One dispenser is cut off for 20 simulated minutes at two thirds.
        if not cut_done and pressed >= 2 * CUSTOMERS // 3 and cut_until is None:
            site.cut("disp-3")
            cut_until = mono + 20 * 60 / SPEED
        if cut_until is not None and mono >= cut_until:
            site.restore("disp-3")
            cut_until, cut_done = None, True
        for desk in desks:
            work_the_desk(staff, desk, site.sim_now(), rnd)
        time.sleep(0.02)


def _leased(site: QueueSite, dispenser: str) -> bool:
    import sqlite3

    db = site.device_db(dispenser)
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT COUNT(DISTINCT service) FROM queue_leases").fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return int(rows[0]) == len(BUTTONS)


def _waiting(staff: Staff) -> bool:
    answer = staff.op("board", timeout=2.0)
    if answer is None:
        return True
    services = answer.result["board"]["services"]
    return any(s["waiting"] for s in services)


def work_the_desk(staff: Staff, desk: Desk, now: float, rnd: random.Random) -> None:
    """One look at a counter: retry what went unanswered, else call, recall or finish."""
    if desk.pending is None:
        if desk.ticket is None:
            desk.pending = (
                "call_next",
                f"{desk.counter}-{rnd.getrandbits(48):x}",
                {"counter": desk.counter},
            )
        elif now >= desk.served_at:
            if not desk.recalled and rnd.random() < 0.04:
                desk.recalled = True  # nobody came: recall, and the next recall no-shows
                op = "recall"
            else:
                op = "finish_service"
            desk.pending = (
                op,
                f"{desk.counter}-{rnd.getrandbits(48):x}",
                {"counter": desk.counter},
            )
        else:
            return
    op, op_id, args = desk.pending
    answer = staff.op(op, op_id=op_id, timeout=1.0, **args)
    if answer is None:
        return  # central away: the same op id goes again next time
    desk.pending = None
    code = answer.code
    if op == "call_next":
        if answer.ok:
            desk.ticket = answer.result["ticket"]["id"]
            desk.served_at = now + rnd.uniform(60, 240)
            desk.recalled = False
        return
    if op == "recall":
        if code == "queue.no_show.recalls" or not answer.ok:
            desk.ticket = None
        else:
            desk.served_at = now + 60
        return
    assert answer.ok or code == "queue.refused.not_called", answer
    desk.ticket = None


def check_the_day(site: QueueSite, staff: Staff) -> None:
    # Every printed ticket reaches central (the cut-off dispenser's included).
    site._wait(lambda: len(site.printed_events()) >= CUSTOMERS, 60, "every ticket at central")
    printed = site.printed_events()
    ids = [e["ticket_id"] for e in printed]
    labels = [(e["business_day"], e["number"]) for e in printed]
    assert len(printed) == CUSTOMERS
    assert len(set(ids)) == len(ids), "a number was issued twice"
    assert len(set(labels)) == len(labels), "two customers hold the same number"
    offline = [e for e in printed if e["offline"]]
    assert offline, "neither the restart nor the cut made anyone issue from a lease"
    assert any(e["device"] == "disp-3" for e in offline)

    for ticket_id in ids:
        answer = op_until_answered(staff, "status", f"status-{ticket_id}", ticket_id=ticket_id)
        status = answer.result["status"]
        assert status is not None and status["state"] in TERMINAL, (ticket_id, status)

    def all_confirmed() -> bool:
        answer = staff.op("unconfirmed", timeout=2.0)
        return answer is not None and answer.result["calls"] == []

    site._wait(all_confirmed, 120, "both boards confirming every call")
    for board in ("board-1", "board-2"):
        assert site.dispenser_events(board, "display.call_shown") >= CUSTOMERS * 0.9
