"""The device's local SQLite store: catalog copy, outbox, and a few counters, in one file.

One connection, owned by the daemon's owner thread. Writes go through explicit
transactions so an event is stored in the same transaction as the state it records.
A missing or corrupt file is moved aside and rebuilt; whatever outbox rows can still be
read from the old file are carried over (they keep their stream and sequence numbers,
so central de-duplicates them if it had them already), and the catalog is fetched again
from central.

Event streams are named ``<role>.<incarnation>``: the incarnation is drawn when the file
is created, so sequence numbers of a rebuilt store never collide with ones central has.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.catalog_copy import SCHEMA as CATALOG_SCHEMA
from controller.catalog_copy import CatalogCopy
from controller.passages import SCHEMA as PASSAGES_SCHEMA
from controller.passages import PassageLog
from entrada.errors import StoreError
from entrada.protocol import CatalogChange, CatalogSnapshot, SnapshotCursor, WristbandData

logger = logging.getLogger(__name__)

#: 2: the catalog holds every entity (was: a wristbands table); passages recorded.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class OutboxRow:
    stream: str
    seq: int
    id: str
    kind: str
    ts: float
    data: str  # JSON text, as stored


class DeviceStore:
    """The device database. Not thread-safe: only the owner thread uses it."""

    def __init__(
        self, path: Path, synchronous: str = "FULL", force_rebuild: str | None = None
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.rebuilt_reason: str | None = None
        self._conn = self._rebuild(force_rebuild) if force_rebuild else self._open_or_rebuild()
        self.incarnation = self._meta("incarnation") or ""
        #: The catalog copy and the passage log share this store's connection.
        self.catalog = CatalogCopy(self._conn)
        self.passages = PassageLog(self._conn)
        self._stream_seq: dict[str, int] = {
            name: seq for name, seq in self._conn.execute("SELECT name, last_seq FROM streams")
        }

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, for the role's own tables (leases, config, commands): they are
        written in this store's transactions, on the owner thread."""
        return self._conn

    # ----------------------------------------------------------------- opening

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA + CATALOG_SCHEMA + PASSAGES_SCHEMA)
            if self._meta_of(conn, "incarnation") is None:
                with _tx(conn):
                    _set_meta(conn, "incarnation", secrets.token_hex(4))
                    _set_meta(conn, "schema", str(SCHEMA_VERSION))
                    _set_meta(conn, "catalog_version", "0")
            elif self._meta_of(conn, "schema") != str(SCHEMA_VERSION):
                _migrate(conn)
            # touch every table so a corrupt page shows up now, not mid-tap
            for table in ("meta", "streams", "outbox", "catalog", "passages"):
                conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()  # noqa: S608
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _open_or_rebuild(self) -> sqlite3.Connection:
        existed = self.path.exists()
        try:
            conn = self._connect()
        except sqlite3.DatabaseError as err:
            return self._rebuild(f"corrupt: {err}")
        if not existed:
            self.rebuilt_reason = "missing"
            logger.warning(
                "device store %s was missing: created empty; catalog comes from central", self.path
            )
        return conn

    def _rebuild(self, reason: str) -> sqlite3.Connection:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        logger.error(
            "device store %s is %s; moving it to %s and rebuilding", self.path, reason, aside.name
        )
        salvaged = _salvage_outbox(self.path)
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(Path(f"{aside}{suffix}"))
        conn = self._connect()
        if salvaged:
            with _tx(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO outbox (stream, seq, id, kind, ts, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    salvaged,
                )
        logger.warning("device store rebuilt; %d outbox events carried over", len(salvaged))
        self.rebuilt_reason = reason
        return conn

    def close(self) -> None:
        self._conn.close()

    # -------------------------------------------------------------------- meta

    @staticmethod
    def _meta_of(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _meta(self, key: str) -> str | None:
        return self._meta_of(self._conn, key)

    @property
    def catalog_version(self) -> int:
        return int(self._meta("catalog_version") or 0)

    # ----------------------------------------------------------------- catalog

    def wristband(self, uid: str) -> WristbandData | None:
        return self.catalog.wristband(uid)

    def apply_catalog(self, changes: Iterable[CatalogChange], to_version: int) -> bool:
        """Apply one page of the change log atomically and move the applied version.
        True if the site's rules changed."""
        with _tx(self._conn):
            rules_version = self.catalog.apply(changes)
            if rules_version is not None:
                _set_meta(self._conn, "rules_version", str(rules_version))
            _set_meta(self._conn, "catalog_version", str(to_version))
        return rules_version is not None

    @property
    def rules_version(self) -> int:
        """The catalog version that carried the rules in force (0: none yet)."""
        return int(self._meta("rules_version") or 0)

    def snapshot_cursor(self) -> SnapshotCursor | None:
        """The snapshot being taken, if any (it survives a restart)."""
        return self.catalog.snapshot_cursor(
            {k: self._meta(k) for k in ("snapshot_as_of", "snapshot_next")}
        )

    def apply_snapshot_page(self, page: CatalogSnapshot) -> bool:
        """Stage one snapshot page; the last one replaces the catalog and sets the version
        to ``as_of``, in the same transaction. True when the snapshot is complete."""
        with _tx(self._conn):
            done = self.catalog.stage(page, self.snapshot_cursor())
            rules = [r.version for r in page.rows if r.entity == "rules" and r.op == "upsert"]
            if rules:
                _set_meta(self._conn, "staged_rules_version", str(rules[-1]))
            if done:
                self.catalog.swap()
                staged = self._meta("staged_rules_version")
                if staged is not None:
                    _set_meta(self._conn, "rules_version", staged)
                self._conn.execute(
                    "DELETE FROM meta WHERE key IN "
                    "('snapshot_as_of', 'snapshot_next', 'staged_rules_version')"
                )
                _set_meta(self._conn, "catalog_version", str(page.as_of))
            else:
                _set_meta(self._conn, "snapshot_as_of", str(page.as_of))
                _set_meta(self._conn, "snapshot_next", page.next or "")
        return done

    def abandon_snapshot(self) -> None:
        with _tx(self._conn):
            self._conn.execute("DELETE FROM meta WHERE key IN ('snapshot_as_of', 'snapshot_next')")
            self._conn.execute("DELETE FROM catalog_staging")

    def bulk_load_catalog(
        self, rows: Iterable[tuple[str, str, str | None, str]], version: int
    ) -> None:
        """Replace the whole catalog with ``(entity, key, uid, data JSON)`` rows
        (benchmarks, tests)."""
        with _tx(self._conn):
            self.catalog.bulk_replace(rows)
            _set_meta(self._conn, "catalog_version", str(version))

    # ------------------------------------------------------------------ outbox

    def stream_name(self, role: str) -> str:
        return f"{role}.{self.incarnation}"

    @contextmanager
    def transaction(self) -> Iterator[EventWriter]:
        """Write state and events atomically: ``with store.transaction() as tx: tx.emit(...)``."""
        writer = EventWriter(self)
        try:
            with _tx(self._conn):
                yield writer
                for stream, seq in writer.touched.items():
                    self._conn.execute(
                        "INSERT INTO streams (name, last_seq) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET last_seq = excluded.last_seq",
                        (stream, seq),
                    )
        except BaseException:
            # roll back the in-memory sequence numbers with the transaction
            for stream, seq in writer.previous.items():
                self._stream_seq[stream] = seq
            raise

    def outbox_depth(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def emitted(self) -> dict[str, int]:
        """Last sequence number produced per stream (events ever emitted)."""
        return dict(self._stream_seq)

    def streams_pending(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT stream FROM outbox")]

    def outbox_after(self, stream: str, after_seq: int, limit: int) -> list[OutboxRow]:
        rows = self._conn.execute(
            "SELECT stream, seq, id, kind, ts, data FROM outbox WHERE stream = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (stream, after_seq, limit),
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def outbox_range(self, stream: str, first: int, last: int) -> list[OutboxRow]:
        rows = self._conn.execute(
            "SELECT stream, seq, id, kind, ts, data FROM outbox WHERE stream = ? "
            "AND seq BETWEEN ? AND ? ORDER BY seq",
            (stream, first, last),
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def acknowledge(self, stream: str, watermark: int) -> int:
        """Delete what central has stored; returns how many rows went.

        Committed without waiting for the disk: if power fails first, the rows come back
        and are re-sent, which central ignores. A tap never waits behind this fsync."""
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with _tx(self._conn):
                cur = self._conn.execute(
                    "DELETE FROM outbox WHERE stream = ? AND seq <= ?", (stream, watermark)
                )
        finally:
            self._conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return cur.rowcount

    def checkpoint(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


class EventWriter:
    """Appends events inside one store transaction, numbering them per stream."""

    def __init__(self, store: DeviceStore) -> None:
        self._store = store
        self.touched: dict[str, int] = {}
        self.previous: dict[str, int] = {}
        self.events: list[OutboxRow] = []

    @property
    def conn(self) -> sqlite3.Connection:
        """For state written in the same transaction as the events."""
        return self._store._conn

    def emit(self, stream: str, kind: str, ts: float, data: dict[str, Any]) -> OutboxRow:
        seqs = self._store._stream_seq
        if stream not in self.previous:
            self.previous[stream] = seqs.get(stream, 0)
        seq = seqs.get(stream, 0) + 1
        seqs[stream] = seq
        self.touched[stream] = seq
        row = OutboxRow(
            stream,
            seq,
            uuid.uuid4().hex,
            kind,
            ts,
            json.dumps(data, separators=(",", ":"), sort_keys=True),
        )
        self.conn.execute(
            "INSERT INTO outbox (stream, seq, id, kind, ts, data) VALUES (?, ?, ?, ?, ?, ?)",
            (row.stream, row.seq, row.id, row.kind, row.ts, row.data),
        )
        self.events.append(row)
        return row


@contextmanager
def _tx(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an older store to this schema. The catalog is central's, so it is simply
    fetched again; the outbox and the stream numbers are kept."""
    with _tx(conn):
        conn.execute("DROP TABLE IF EXISTS wristbands")
        conn.execute("DELETE FROM catalog")
        _set_meta(conn, "catalog_version", "0")
        _set_meta(conn, "schema", str(SCHEMA_VERSION))
    logger.warning(
        "device store migrated to schema %d; the catalog is fetched again", SCHEMA_VERSION
    )


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _salvage_outbox(path: Path) -> list[tuple[Any, ...]]:
    """Read whatever outbox rows a damaged file still yields."""
    if not path.exists():
        return []
    rows: list[tuple[Any, ...]] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return rows
    try:
        cur = conn.execute("SELECT stream, seq, id, kind, ts, data FROM outbox")
        while True:
            try:
                row = cur.fetchone()
            except sqlite3.DatabaseError as err:
                logger.warning("outbox salvage stopped early: %s", err)
                break
            if row is None:
                break
            rows.append(tuple(row))
    except sqlite3.DatabaseError as err:
        logger.warning("outbox could not be salvaged: %s", err)
    finally:
        conn.close()
    return rows


def next_epoch(path: Path, now: float) -> int:
    """A connect epoch larger than any before, even after a rebuilt store (it is at least
    the Unix time) and even if the clock went back (at least last + 1).

    Called from the MQTT link's thread with a connection of its own: the epoch is the
    link's state, and SQLite serialises it against the owner thread's writes.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        with _tx(conn):
            last = int(DeviceStore._meta_of(conn, "epoch") or 0)
            epoch = max(last + 1, int(now))
            _set_meta(conn, "epoch", str(epoch))
    except sqlite3.DatabaseError as err:
        logger.warning("epoch counter unavailable (%s); using the clock", err)
        epoch = int(now)
    finally:
        conn.close()
    return epoch


def wrap_db_error(err: sqlite3.Error) -> StoreError:
    return StoreError(f"device store: {err}")
