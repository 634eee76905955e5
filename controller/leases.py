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

import sqlite3
from dataclasses import dataclass

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
