"""Passages through this gate and its peers: the wristbands' history on the device.

A gate records its own passages (in the same transaction as the ``gate.passage`` event)
and those its peers share through the broker, keyed on the passage id so one heard twice
counts once. From them come anti-passback, the entries a pass has used, the charges an
inner exit posted to the tab (see ``controller.rules.assemble``), and the zone occupancy,
which :class:`Occupancy` keeps in memory for the owner thread.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from entrada.protocol import PeerPassage

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    at REAL NOT NULL,
    gate TEXT NOT NULL,
    -- kept past the history window: consuming passages count a pass's entries, a settled
    -- exit bounds the open tab, an inner exit's tab charge is owed until then
    keep INTEGER NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS passages_uid ON passages (uid, at);
CREATE INDEX IF NOT EXISTS passages_gate ON passages (gate, at);
"""

#: Passages older than this are pruned, but for those the usage counters and the open tab
#: need (see :func:`_kept`).
KEEP_SECONDS = 7 * 86400.0


def _kept(passage: PeerPassage) -> bool:
    """Needed whatever its age: it consumed an entitlement (a pass's entries and days),
    settled a visit (the open tab starts after it) or charged the tab."""
    return passage.consumed or passage.settled or passage.tab_minor > 0


class PassageLog:
    """The ``passages`` table, on the device store's connection (owner thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def add(self, passage: PeerPassage) -> bool:
        """Record a passage (inside the caller's transaction); False if it was known."""
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO passages (id, uid, at, gate, keep, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                passage.id,
                passage.uid,
                passage.at,
                passage.gate,
                int(_kept(passage)),
                passage.model_dump_json(),
            ),
        )
        return cur.rowcount == 1

    def of_uid(self, uid: str, since: float) -> list[PeerPassage]:
        """The wristband's passages at or after ``since``, and every older one the usage
        counters or the open tab need, oldest first."""
        rows = self._conn.execute(
            "SELECT data FROM passages WHERE uid = ? AND (at >= ? OR keep = 1) ORDER BY at",
            (uid, since),
        )
        return list(_parsed(r[0] for r in rows))

    def of_gate(self, gate: str, since: float) -> list[PeerPassage]:
        """Passages recorded by ``gate`` at or after ``since`` (to share them again)."""
        rows = self._conn.execute(
            "SELECT data FROM passages WHERE gate = ? AND at >= ? ORDER BY at", (gate, since)
        )
        return list(_parsed(r[0] for r in rows))

    def ids_of_gate(self, gate: str, since: float) -> list[str]:
        """Ids of the passages ``gate`` recorded at or after ``since``, oldest first (cheap:
        a backlog to share is read a batch at a time with :meth:`by_ids`)."""
        rows = self._conn.execute(
            "SELECT id FROM passages WHERE gate = ? AND at >= ? ORDER BY at", (gate, since)
        )
        return [r[0] for r in rows]

    def by_ids(self, ids: list[str]) -> list[PeerPassage]:
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT data FROM passages WHERE id IN ({marks}) ORDER BY at",  # noqa: S608
            ids,
        )
        return list(_parsed(r[0] for r in rows))

    def since(self, since: float) -> list[PeerPassage]:
        """Every passage at or after ``since``, oldest first (to rebuild occupancy)."""
        rows = self._conn.execute("SELECT data FROM passages WHERE at >= ? ORDER BY at", (since,))
        return list(_parsed(r[0] for r in rows))

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def prune(self, before: float) -> int:
        """Forget passages before ``before`` that nothing needs any more (own transaction)."""
        with self._conn:
            cur = self._conn.execute("DELETE FROM passages WHERE at < ? AND keep = 0", (before,))
        return cur.rowcount


def _parsed(texts: Iterable[str]) -> Iterator[PeerPassage]:
    for text in texts:
        try:
            yield PeerPassage.model_validate_json(text)
        except ValidationError as err:  # a damaged row costs one passage, not the gate
            logger.error("skipping a corrupt passage row: %s", err)


@dataclass
class Occupancy:
    """Who is inside which zone now, from the latest passage of each wristband.

    A wristband whose latest passage is older than ``ttl`` seconds no longer counts (a
    visitor who left through an unwatched door, or a peer's exit never heard): a stale
    count must not keep a zone "full" for ever. Expiry costs what expires, not what is
    inside: every passage observed also goes on a heap ordered by time, and the heap is
    popped up to the horizon (an entry a later passage superseded is dropped there).
    """

    ttl: float
    _where: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _by_time: list[tuple[float, str]] = field(default_factory=list)

    def observe(self, passage: PeerPassage) -> None:
        """Take a passage into account (in any order: an older one than known is ignored)."""
        known = self._where.get(passage.uid)
        if known is not None and known[1] > passage.at:
            return
        if known is not None:
            self._move(known[0], -1)
        self._where[passage.uid] = (passage.zone_to, passage.at)
        self._move(passage.zone_to, +1)
        heapq.heappush(self._by_time, (passage.at, passage.uid))

    def expire(self, now: float) -> int:
        """Forget wristbands last seen more than ``ttl`` ago; returns how many."""
        horizon = now - self.ttl
        gone = 0
        while self._by_time and self._by_time[0][0] < horizon:
            _, uid = heapq.heappop(self._by_time)
            known = self._where.get(uid)
            if known is None or known[1] >= horizon:
                continue  # already gone, or seen again since
            del self._where[uid]
            self._move(known[0], -1)
            gone += 1
        return gone

    def innermost(self) -> dict[str, int]:
        """People per zone, counted in their innermost zone only."""
        return dict(self._counts)

    def _move(self, zone: str | None, delta: int) -> None:
        if zone is None:
            return
        count = self._counts.get(zone, 0) + delta
        if count:
            self._counts[zone] = count
        else:
            self._counts.pop(zone, None)
