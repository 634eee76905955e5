"""The SQLite backend of the central store (:class:`central.store.Storage`).

One file in WAL mode: readers never block the writer, and the admin CLI may write the
catalog from another process while the service ingests. ``synchronous=FULL`` by default (a
commit survives power loss); explicit ``BEGIN IMMEDIATE`` transactions with a busy timeout,
so two writers queue instead of failing on a lock upgrade. A :class:`SqliteStorage` holds
one connection and is used by the thread that opened it (sqlite3 enforces this);
``SqliteStorage(path, readonly=True)`` opens the file read-only for reports while the
service writes.

Watermarks are advanced in the same transaction as the events (see :meth:`_advance`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from central.catalog_store import CATALOG_SCHEMA, SqliteCatalog, migrate, translated
from central.registry import DeviceRecord, accept_status
from central.store import DeviceBatch, QuarantineRecord, StoredEvent, StoreResult
from entrada.errors import StoreError
from entrada.protocol import Event, Status

logger = logging.getLogger(__name__)

#: 2: the catalog holds every entity (``catalog_rows``), not only wristbands.
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
#: Rows read at a time while walking a watermark over previously stored seqs.
_WALK_CHUNK = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
    id TEXT NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL, data TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (device, stream, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
CREATE TABLE IF NOT EXISTS streams (
    device TEXT NOT NULL, stream TEXT NOT NULL,
    watermark INTEGER NOT NULL, max_seq INTEGER NOT NULL,
    PRIMARY KEY (device, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY, device TEXT, stream TEXT, seq INTEGER,
    topic TEXT NOT NULL, payload BLOB NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL,
    received_at REAL NOT NULL, digest TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_event
    ON quarantine (device, stream, seq) WHERE seq IS NOT NULL;
-- A payload refused whole cannot be acknowledged, so its sender re-sends it: keep one copy.
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_payload
    ON quarantine (topic, digest) WHERE seq IS NULL;
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, role TEXT, state TEXT NOT NULL, epoch INTEGER NOT NULL,
    versions TEXT, outbox_depth INTEGER NOT NULL DEFAULT 0, faults TEXT NOT NULL DEFAULT '[]',
    last_seen REAL, first_seen REAL NOT NULL
);
"""


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SqliteStorage(SqliteCatalog):
    """:class:`Storage` in one SQLite file (WAL). Use it from one thread only. The
    catalog methods come from :class:`~central.catalog_store.SqliteCatalog`."""

    def __init__(
        self,
        path: str | Path,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        *,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no central store at {self.path} (has central run yet?)")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open the central store {self.path}: {err}") from err
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if readonly:
                self._check_version()
            else:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._create_schema()
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"cannot prepare the central store {self.path}: {err}") from err
        except StoreError:
            conn.close()
            raise

    # ------------------------------------------------------------- plumbing

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_schema(self) -> None:
        with self._write() as c:
            # one statement at a time: executescript() would commit the transaction
            for statement in (_SCHEMA + CATALOG_SCHEMA).split(";"):
                if statement.strip():
                    c.execute(statement)
            row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is None:
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema {row[0]}, this software knows {SCHEMA_VERSION}: "
                    "upgrade Entrada"
                )
            elif row[0] < SCHEMA_VERSION:
                migrate(c, row[0])
                c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def _check_version(self) -> None:
        try:
            row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError as err:
            raise StoreError(f"{self.path} is not a central store: {err}") from err
        if row[0] is not None and row[0] < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has the older schema {row[0]}: start central once to upgrade it"
            )
        if row[0] is None or row[0] > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: unsupported schema version {row[0]}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite3 errors become StoreError, nothing half-written."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"{self.path}: cannot start a write: {err}") from err
        try:
            yield c
            c.execute("COMMIT")
        except sqlite3.Error as err:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise StoreError(f"{self.path}: write failed: {err}") from err
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    # --------------------------------------------------------------- events

    def store_events(
        self,
        device: str,
        events: Sequence[Event],
        now: float,
        quarantined: Sequence[QuarantineRecord] = (),
    ) -> StoreResult:
        return self.store_batches([DeviceBatch(device, events, quarantined)], now)[device]

    def store_batches(self, batches: Sequence[DeviceBatch], now: float) -> dict[str, StoreResult]:
        results: dict[str, StoreResult] = {}
        with self._write() as c:
            for batch in batches:
                res = self._store_one(c, batch, now)
                prev = results.get(batch.device)
                if prev is not None:  # the same device twice in one batch: merge
                    res = StoreResult(
                        prev.stored_new + res.stored_new,
                        prev.duplicates + res.duplicates,
                        {**prev.watermarks_changed, **res.watermarks_changed},
                    )
                results[batch.device] = res
        return results

    def _store_one(self, c: sqlite3.Connection, batch: DeviceBatch, now: float) -> StoreResult:
        device = batch.device
        seqs: dict[str, list[int]] = defaultdict(list)
        rows = []
        for e in batch.events:
            seqs[e.stream].append(e.seq)
            rows.append((device, e.stream, e.seq, e.id, e.kind, e.ts, _dumps(e.data), now))
        stored = 0
        if rows:
            cur = c.executemany(
                "INSERT OR IGNORE INTO events (device, stream, seq, id, kind, ts, data, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = cur.rowcount
        self._insert_quarantine(c, batch.quarantined, now)
        for q in batch.quarantined:
            if q.stream is not None and q.seq is not None:
                seqs[q.stream].append(q.seq)
        changed = {}
        for stream, stream_seqs in seqs.items():
            moved = self._advance(c, device, stream, stream_seqs)
            if moved is not None:
                changed[stream] = moved
        if rows or batch.quarantined:
            self._touch(c, device, now)
        return StoreResult(stored, len(rows) - stored, changed)

    def _insert_quarantine(
        self, c: sqlite3.Connection, records: Sequence[QuarantineRecord], now: float
    ) -> None:
        if records:
            c.executemany(
                "INSERT OR IGNORE INTO quarantine (device, stream, seq, topic, payload, code, "
                "reason, received_at, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        q.device,
                        q.stream,
                        q.seq,
                        q.topic,
                        q.payload,
                        q.code,
                        q.reason,
                        now,
                        hashlib.sha256(q.payload).hexdigest(),
                    )
                    for q in records
                ],
            )

    def _advance(
        self, c: sqlite3.Connection, device: str, stream: str, seqs: list[int]
    ) -> int | None:
        """Move the stream's watermark over ``seqs`` (just stored) and anything stored
        before; return the new watermark if it moved.

        Invariant: after every transaction the watermark is maximal (``watermark + 1`` is
        not stored). So it can only move if this batch holds ``watermark + 1``; it then
        walks the batch's own run first, and reads stored seqs (out-of-order arrivals
        from earlier batches) only if something beyond that run is stored. Every seq is
        walked over once in the life of the stream: amortised O(1) per event.
        """
        row = c.execute(
            "SELECT watermark, max_seq FROM streams WHERE device = ? AND stream = ?",
            (device, stream),
        ).fetchone()
        old_wm, old_max = row if row is not None else (0, 0)
        new_max = max(old_max, max(seqs))
        wm = old_wm
        if wm + 1 in seqs:
            for s in sorted(set(seqs)):
                if s == wm + 1:
                    wm = s
                elif s > wm + 1:
                    break
            if wm < new_max:
                wm = self._walk(c, device, stream, wm)
        if row is None:
            c.execute(
                "INSERT INTO streams (device, stream, watermark, max_seq) VALUES (?, ?, ?, ?)",
                (device, stream, wm, new_max),
            )
        elif wm != old_wm or new_max != old_max:
            c.execute(
                "UPDATE streams SET watermark = ?, max_seq = ? WHERE device = ? AND stream = ?",
                (wm, new_max, device, stream),
            )
        return wm if wm != old_wm else None

    def _walk(self, c: sqlite3.Connection, device: str, stream: str, wm: int) -> int:
        """Advance ``wm`` over consecutive stored seqs (events or quarantined events)."""
        while True:
            ev = [
                r[0]
                for r in c.execute(
                    "SELECT seq FROM events WHERE device = ? AND stream = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (device, stream, wm, _WALK_CHUNK),
                )
            ]
            qu = [
                r[0]
                for r in c.execute(
                    "SELECT seq FROM quarantine WHERE device = ? AND stream = ? AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (device, stream, wm, _WALK_CHUNK),
                )
            ]
            # Both lists are complete only up to the last row of a full chunk.
            horizon = min(
                ev[-1] if len(ev) == _WALK_CHUNK else float("inf"),
                qu[-1] if len(qu) == _WALK_CHUNK else float("inf"),
            )
            for s in sorted({*ev, *qu}):
                if s > horizon:
                    break
                if s != wm + 1:
                    return wm
                wm = s
            if horizon == float("inf"):
                return wm

    def _touch(self, c: sqlite3.Connection, device: str, now: float) -> None:
        c.execute(
            "INSERT INTO devices (device, state, epoch, first_seen, last_seen) "
            "VALUES (?, 'unknown', 0, ?, ?) "
            "ON CONFLICT (device) DO UPDATE SET last_seen = excluded.last_seen",
            (device, now, now),
        )

    def quarantine(self, records: Sequence[QuarantineRecord], now: float) -> None:
        if not records:
            return
        with self._write() as c:
            self._insert_quarantine(c, records, now)
            by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
            for q in records:
                if q.device is not None and q.stream is not None and q.seq is not None:
                    by_stream[(q.device, q.stream)].append(q.seq)
            for (device, stream), seqs in by_stream.items():
                self._advance(c, device, stream, seqs)

    @translated
    def watermarks(self, device: str) -> dict[str, int]:
        return dict(
            self._conn.execute(
                "SELECT stream, watermark FROM streams WHERE device = ? ORDER BY stream",
                (device,),
            ).fetchall()
        )

    # ------------------------------------------------------------- registry

    def apply_status(self, status: Status, now: float, *, seen: bool = True) -> bool:
        with self._write() as c:
            row = c.execute(
                "SELECT epoch, state, last_seen FROM devices WHERE device = ?", (status.device,)
            ).fetchone()
            known_epoch, known_state, last_seen = row if row is not None else (None, None, None)
            if not accept_status(known_epoch, known_state, status.epoch, status.state):
                return False
            versions = _dumps(status.versions.model_dump()) if status.versions else None
            values = (
                status.role,
                status.state,
                status.epoch,
                versions,
                status.outbox_depth,
                _dumps(list(status.faults)),
                now if seen else last_seen,
            )
            if row is None:
                c.execute(
                    "INSERT INTO devices (role, state, epoch, versions, outbox_depth, faults, "
                    "last_seen, device, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, status.device, now),
                )
            else:
                c.execute(
                    "UPDATE devices SET role = ?, state = ?, epoch = ?, versions = ?, "
                    "outbox_depth = ?, faults = ?, last_seen = ? WHERE device = ?",
                    (*values, status.device),
                )
            return True

    @translated
    def devices(self) -> list[DeviceRecord]:
        rows = self._conn.execute(
            "SELECT device, role, state, epoch, versions, outbox_depth, faults, last_seen, "
            "first_seen FROM devices ORDER BY device"
        ).fetchall()
        return [
            DeviceRecord(
                device=r[0],
                role=r[1],
                state=r[2],
                epoch=r[3],
                versions=json.loads(r[4]) if r[4] else None,
                outbox_depth=r[5],
                faults=json.loads(r[6]),
                last_seen=r[7],
                first_seen=r[8],
            )
            for r in rows
        ]

    # -------------------------------------------------------------- reports

    @staticmethod
    def _where(kind: str | None, device: str | None) -> tuple[str, tuple[str, ...]]:
        clauses, args = [], []
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if device is not None:
            clauses.append("device = ?")
            args.append(device)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)

    @translated
    def count_events(self, kind: str | None = None, device: str | None = None) -> int:
        where, args = self._where(kind, device)
        return int(self._conn.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0])  # noqa: S608 (fixed clauses, values bound)

    @translated
    def event_counts(self) -> dict[str, int]:
        return dict(
            self._conn.execute(
                "SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind"
            ).fetchall()
        )

    def events(self, kind: str | None = None, device: str | None = None) -> Iterator[StoredEvent]:
        where, args = self._where(kind, device)
        sql = (
            "SELECT device, stream, seq, id, kind, ts, data, received_at FROM events"  # noqa: S608 (fixed clauses, values bound)
            f"{where} ORDER BY device, stream, seq"
        )
        try:
            cur = self._conn.execute(sql, args)
            try:
                for r in cur:
                    yield StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])
            finally:
                cur.close()
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err

    @translated
    def count_quarantined(self, device: str | None = None) -> int:
        if device is None:
            row = self._conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()
        else:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM quarantine WHERE device = ?", (device,)
            ).fetchone()
        return int(row[0])
