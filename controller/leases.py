"""Blocks of ticket numbers leased from central, for a dispenser to issue from while
central is unreachable.

Central reserves each block for this dispenser alone (its online numbering skips past
it), so a number taken from a block is never issued anywhere else on the site. A number is
used only once its ticket has printed: :meth:`LeaseBook.next_number` only looks, and
:meth:`LeaseBook.use` (called in the same transaction as the ``queue.ticket_printed``
event) moves the block's cursor. A failed print therefore consumes nothing.

The table lives in the device store. If the store is rebuilt the leases are gone with it
and the dispenser asks for new blocks: numbers of a forgotten block are never reused.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.roles.dispenser import DayView, leases_wanted
from entrada.protocol_queue import LeaseReply, LeaseRequest, QueueBoard

logger = logging.getLogger(__name__)

LEASE_RETRY = 5.0  # re-ask for a block not granted within this, s

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_leases (
    service TEXT NOT NULL,
    business_day TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    next INTEGER NOT NULL,
    PRIMARY KEY (service, business_day, first)
);
"""


@dataclass(frozen=True)
class Block:
    service: str
    business_day: str
    first: int
    last: int
    next: int

    @property
    def left(self) -> int:
        return self.last - self.next + 1


class LeaseBook:
    """The dispenser's leased blocks (owner thread only)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)

    def add(self, service: str, business_day: str, first: int, last: int) -> bool:
        """Keep a block central granted (a repeated reply changes nothing); False when it
        is already known."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO queue_leases (service, business_day, first, last, next) "
            "VALUES (?, ?, ?, ?, ?)",
            (service, business_day, first, last, first),
        )
        return cur.rowcount > 0

    def next_number(self, service: str, business_day: str) -> int | None:
        """The number the next offline ticket of ``service`` would get (None: none left)."""
        row = self._conn.execute(
            "SELECT next FROM queue_leases WHERE service = ? AND business_day = ? "
            "AND next <= last ORDER BY first LIMIT 1",
            (service, business_day),
        ).fetchone()
        return None if row is None else int(row[0])

    def use(self, service: str, business_day: str, number: int) -> None:
        """Mark ``number`` issued (call inside the transaction that records the ticket)."""
        cur = self._conn.execute(
            "UPDATE queue_leases SET next = ? + 1 WHERE service = ? AND business_day = ? "
            "AND first <= ? AND ? <= last AND next = ?",
            (number, service, business_day, number, number, number),
        )
        if cur.rowcount != 1:
            raise ValueError(f"number {number} of {service} {business_day} is not next in a block")

    def left(self, service: str, business_day: str) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(last - next + 1), 0) FROM queue_leases "
            "WHERE service = ? AND business_day = ? AND next <= last",
            (service, business_day),
        ).fetchone()
        return int(row[0])

    def blocks(self) -> list[Block]:
        return [
            Block(*row)
            for row in self._conn.execute(
                "SELECT service, business_day, first, last, next FROM queue_leases "
                "ORDER BY business_day, service, first"
            )
        ]

    def forget_before(self, business_day: str) -> int:
        """Drop blocks of business days before ``business_day`` (ISO dates sort)."""
        cur = self._conn.execute("DELETE FROM queue_leases WHERE business_day < ?", (business_day,))
        return cur.rowcount


class LeaseKeeper:
    """Asks central for blocks while in contact, per service and business day: when fewer
    than ``lease_low`` unused numbers are left, and for the next day once it is
    ``lease_ahead`` away. A request not answered within :data:`LEASE_RETRY` goes again (a
    lost reply costs a block of unused numbers, never a duplicate)."""

    def __init__(self, device_id: str, section: Any, send: Callable[[LeaseRequest], bool]) -> None:
        self.device_id = device_id
        self.d = section
        self._send = send
        #: (service, day) -> monotonic time a request may be repeated.
        self._asked: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        """Forget requests in flight (a reconnect: ask again at once)."""
        self._asked.clear()

    def upkeep(
        self, book: LeaseBook, board: QueueBoard | None, in_contact: bool, now: float, mono: float
    ) -> None:
        day = DayView.of(board)
        if day is None or not in_contact:
            return
        services = sorted(set(self.d.buttons.values()))
        days = {day.day_at(now), day.next_day()}
        left = {(s, d): book.left(s, d) for s in services for d in days}
        for service, business_day in leases_wanted(
            services, left, day, now, low=self.d.lease_low, ahead=self.d.lease_ahead
        ):
            if self._asked.get((service, business_day), 0.0) > mono:
                continue
            request = LeaseRequest(
                request_id=f"{self.device_id}-lease-{secrets.token_hex(6)}",
                service=service,
                business_day=business_day,
                size=self.d.lease_size,
            )
            if self._send(request):
                self._asked[(service, business_day)] = mono + LEASE_RETRY

    def on_reply(self, reply: LeaseReply, book: LeaseBook) -> None:
        self._asked.pop((reply.service, reply.business_day), None)
        if not reply.ok or reply.first is None or reply.last is None:
            logger.warning(
                "no block of %s for %s: %s", reply.service, reply.business_day, reply.code
            )
            return
        if book.add(reply.service, reply.business_day, reply.first, reply.last):
            logger.info(
                "leased %s %d-%d for %s", reply.service, reply.first, reply.last, reply.business_day
            )


INFLIGHT_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_inflight (
    ticket_id TEXT PRIMARY KEY,
    event TEXT NOT NULL
);
"""


class InFlight:
    """Tickets being printed right now, written down before the first byte goes out.

    A power cut between the print and the commit of its ``queue.ticket_printed`` event
    would otherwise leave a leased number unused on the device (the next customer would get
    the same one) or central's number "printing" for good. At start, :meth:`left_over`
    gives what was in flight: the customer may well hold that ticket, so it counts as
    printed. A number is never given twice; at worst a ticket nobody took is no-showed.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(INFLIGHT_SCHEMA)

    def hold(self, event: dict[str, Any]) -> None:
        """Before printing: the ticket's event, durable (its own transaction)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO queue_inflight (ticket_id, event) VALUES (?, ?)",
            (event["ticket_id"], json.dumps(event)),
        )

    def release(self, ticket_id: str) -> None:
        """After the print: inside the transaction that records it, or alone on failure."""
        self._conn.execute("DELETE FROM queue_inflight WHERE ticket_id = ?", (ticket_id,))

    def left_over(self) -> list[dict[str, Any]]:
        return [
            json.loads(event)
            for (event,) in self._conn.execute("SELECT event FROM queue_inflight ORDER BY rowid")
        ]
