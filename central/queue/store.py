"""The queue's own SQLite file: the engine's state, written op by op.

Tables:

- ``entities(kind, key, day, data)``: the latest value of every entity (JSON of
  :func:`central.queue.model.to_plain`), ``day`` its business day (NULL for counters and
  the day mark);
- ``ops(seq, op_id, kind, day, result)``: every applied op's result (without its changes),
  so a restarted central answers a repeated op id exactly as before;
- ``schema_version``.

:meth:`QueueStore.save` writes one result's changes and its op row in one transaction
(``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``): after a crash the file holds every op
whose reply could have been sent, or not at all. :meth:`QueueStore.load` reads back what
the engine holds: the entities of the days from the day mark's ``kept_from`` on (older
rows stay in the file for reports: :meth:`QueueStore.visits`), and the newest remembered
results. ``QueueEngine(settings, snapshot=store.load())`` is then the engine as it was.

One connection, used by the thread that opened it (the service's owner thread).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from central.queue.engine import MAX_REMEMBERED_OPS
from central.queue.model import (
    Call,
    DayMark,
    Entity,
    Visit,
    entity_day,
    entity_from_plain,
    from_plain,
    to_plain,
)
from central.queue.ops import OpResult
from central.queue.state import QueueSnapshot
from entrada.errors import StoreError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    kind TEXT NOT NULL, key TEXT NOT NULL, day TEXT, data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entities_day ON entities (day, kind);
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    day TEXT NOT NULL, result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_day ON ops (day);
"""


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class QueueStore:
    def __init__(self, path: str | Path, synchronous: Literal["NORMAL", "FULL"] = "FULL") -> None:
        self.path = Path(path)
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the queue store {self.path}: {err}") from err
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            with self._write() as c:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                row = c.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    c.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path}: queue store schema {row[0]}, expected {SCHEMA_VERSION}"
                    )
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"cannot prepare the queue store {self.path}: {err}") from err
        except StoreError:
            conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> QueueStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # ------------------------------------------------------------------- writing

    def save(self, result: OpResult) -> None:
        """Write ``result``'s changes and (unless it is a duplicate or a tick) its op row,
        in one transaction. A duplicate changes nothing and is not written."""
        if result.duplicate:
            return
        rows = [(e.KIND, e.key, _day(entity_day(e)), _dumps(to_plain(e))) for e in result.changes]
        try:
            with self._write() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO entities (kind, key, day, data) VALUES (?, ?, ?, ?)",
                    rows,
                )
                if result.op_id:
                    plain = to_plain(replace(result, changes=()))
                    c.execute(
                        "INSERT INTO ops (op_id, kind, day, result) VALUES (?, ?, ?, ?)",
                        (result.op_id, result.kind, self._day_now(c, result), _dumps(plain)),
                    )
        except sqlite3.Error as err:
            raise StoreError(f"queue store write failed: {err}") from err

    @staticmethod
    def _day_now(c: sqlite3.Connection, result: OpResult) -> str:
        """The business day the op was applied on: the day mark's (in the same
        transaction, so a mark the op itself moved counts)."""
        for e in result.changes:
            if isinstance(e, DayMark):
                return e.current.isoformat()
        row = c.execute(
            "SELECT data FROM entities WHERE kind = ? AND key = ?", (DayMark.KIND, "day")
        ).fetchone()
        if row is None:
            raise StoreError("an op result without a day mark in the queue store")
        return str(json.loads(row[0])["current"])

    # ------------------------------------------------------------------- reading

    def load(self) -> QueueSnapshot:
        """What the engine held after the last saved op."""
        try:
            c = self._conn
            mark_row = c.execute(
                "SELECT data FROM entities WHERE kind = ? AND key = ?", (DayMark.KIND, "day")
            ).fetchone()
            kept_from = json.loads(mark_row[0])["kept_from"] if mark_row is not None else ""
            rows = c.execute(
                "SELECT kind, data FROM entities WHERE day IS NULL OR day >= ?", (kept_from,)
            ).fetchall()
            ops = c.execute(
                "SELECT day, result FROM ("
                " SELECT seq, day, result FROM ops WHERE day >= ? ORDER BY seq DESC LIMIT ?"
                ") ORDER BY seq",
                (kept_from, MAX_REMEMBERED_OPS),
            ).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"queue store read failed: {err}") from err
        try:
            entities: list[Entity] = [entity_from_plain(k, json.loads(d)) for k, d in rows]
            results = [
                (date.fromisoformat(day), from_plain(OpResult, json.loads(text)))
                for day, text in ops
            ]
        except (ValidationError, KeyError, ValueError) as err:
            raise StoreError(f"corrupt queue store {self.path}: {err}") from err
        entities.sort(key=_load_order)
        logger.info(
            "queue store: %d entities and %d op results loaded", len(entities), len(results)
        )
        return QueueSnapshot(entities, results)

    def visits(self, first: date, last: date) -> list[Visit]:
        """Every visit of business days ``first..last`` (also days the engine forgot)."""
        try:
            rows = self._conn.execute(
                "SELECT data FROM entities WHERE kind = ? AND day BETWEEN ? AND ?",
                (Visit.KIND, first.isoformat(), last.isoformat()),
            ).fetchall()
            return [from_plain(Visit, json.loads(d)) for (d,) in rows]
        except (sqlite3.Error, ValidationError, ValueError) as err:
            raise StoreError(f"queue store read failed: {err}") from err

    def result(self, op_id: str) -> OpResult | None:
        """The stored result of ``op_id`` (however old)."""
        try:
            row = self._conn.execute("SELECT result FROM ops WHERE op_id = ?", (op_id,)).fetchone()
            return None if row is None else from_plain(OpResult, json.loads(row[0]))
        except (sqlite3.Error, ValidationError, ValueError) as err:
            raise StoreError(f"queue store read failed: {err}") from err


def _day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


_ORDER = {"daymark": 0, "counter": 1, "pool": 2, "lease": 3, "ticket": 4, "visit": 5}


def _load_order(e: Entity) -> tuple[int, float, str]:
    """Calls in call order and visits in end order, so the indexes rebuild as they were."""
    if isinstance(e, Call):
        return (6, e.called_at, e.key)
    if isinstance(e, Visit):
        return (5, e.ended_at if e.ended_at is not None else float("inf"), e.key)
    return (_ORDER.get(e.KIND, 7), 0.0, e.key)
