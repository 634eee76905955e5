"""Tables of the device config service in central's SQLite file, and how to open it.

Own tables (``devcfg_*``) beside the store's, created if missing, so the technician's CLI
can write them while the service runs (WAL; every write is one ``BEGIN IMMEDIATE``
transaction, with a busy timeout so two writers queue). :mod:`central.devconfig` holds the
logic; this module only opens the file and moves rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from entrada.errors import StoreError

BUSY_TIMEOUT_MS = 10_000

SCHEMA = (
    # one row per layer: 'site', 'role:<role>', 'device:<id>'
    """CREATE TABLE IF NOT EXISTS devcfg_layers (
        scope TEXT PRIMARY KEY, document TEXT NOT NULL, updated_at REAL NOT NULL
    ) WITHOUT ROWID""",
    # the current desired document of each device, merged from its layers
    """CREATE TABLE IF NOT EXISTS devcfg_devices (
        device TEXT PRIMARY KEY, role TEXT NOT NULL, version INTEGER NOT NULL,
        document TEXT NOT NULL, updated_at REAL NOT NULL,
        published_version INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    # the highest version ever given to a device; kept when the device is removed, so a
    # device added again never sees a version it may have applied before
    """CREATE TABLE IF NOT EXISTS devcfg_highwater (
        device TEXT PRIMARY KEY, version INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # every version ever made, and which layer change made it
    """CREATE TABLE IF NOT EXISTS devcfg_history (
        device TEXT NOT NULL, version INTEGER NOT NULL, document TEXT NOT NULL,
        layer TEXT NOT NULL, by TEXT NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (device, version)
    ) WITHOUT ROWID""",
    # the last config report of each device
    """CREATE TABLE IF NOT EXISTS devcfg_reported (
        device TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL,
        code TEXT, reason TEXT, ts REAL NOT NULL, received_at REAL NOT NULL,
        applied_version INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    # removed devices whose retained desired config the service must still clear
    """CREATE TABLE IF NOT EXISTS devcfg_removed (
        device TEXT PRIMARY KEY, at REAL NOT NULL
    ) WITHOUT ROWID""",
)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    return json.loads(text)


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to central's file in autocommit mode (WAL unless read-only)."""
    path = Path(path)
    try:
        if readonly:
            if not path.exists():
                raise StoreError(f"no central store at {path} (has central run yet?)")
            conn = sqlite3.connect(
                path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise StoreError(f"{path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
    except (sqlite3.Error, OSError) as err:
        raise StoreError(f"cannot open the central store {path}: {err}") from err
    return conn


def create_tables(conn: sqlite3.Connection) -> None:
    try:
        for statement in SCHEMA:
            conn.execute(statement)
    except sqlite3.Error as err:
        raise StoreError(f"cannot create the device config tables: {err}") from err


def has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'devcfg_devices'"
    ).fetchone()
    return bool(row[0])


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; sqlite3 errors become StoreError, nothing half-written."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as err:
        raise StoreError(f"central store: cannot start a write: {err}") from err
    try:
        yield conn
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"central store: device config write failed: {err}") from err
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def layer(conn: sqlite3.Connection, scope: str) -> dict[str, Any]:
    row = conn.execute("SELECT document FROM devcfg_layers WHERE scope = ?", (scope,)).fetchone()
    return {} if row is None else dict(loads(row[0]))


def put_layer(conn: sqlite3.Connection, scope: str, document: dict[str, Any], now: float) -> None:
    if not document:
        conn.execute("DELETE FROM devcfg_layers WHERE scope = ?", (scope,))
        return
    conn.execute(
        "INSERT INTO devcfg_layers (scope, document, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(scope) DO UPDATE SET document = excluded.document, "
        "updated_at = excluded.updated_at",
        (scope, dumps(document), now),
    )


def device_row(conn: sqlite3.Connection, device: str) -> tuple[str, int, dict[str, Any]] | None:
    """``(role, version, document)`` of a known device."""
    row = conn.execute(
        "SELECT role, version, document FROM devcfg_devices WHERE device = ?", (device,)
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]), dict(loads(row[2])))


def devices_of(conn: sqlite3.Connection, role: str | None = None) -> list[tuple[str, str]]:
    """``(device, role)`` of every known device (of one role), sorted."""
    if role is None:
        rows = conn.execute("SELECT device, role FROM devcfg_devices ORDER BY device")
    else:
        rows = conn.execute(
            "SELECT device, role FROM devcfg_devices WHERE role = ? ORDER BY device", (role,)
        )
    return [(str(d), str(r)) for d, r in rows]


def registry_role(conn: sqlite3.Connection, device: str) -> str | None:
    """The role a device announced in its status (central's registry), if any."""
    try:
        row = conn.execute("SELECT role FROM devices WHERE device = ?", (device,)).fetchone()
    except sqlite3.OperationalError:  # no registry in this file yet
        return None
    return None if row is None or not row[0] else str(row[0])


def next_version(conn: sqlite3.Connection, device: str) -> int:
    """One more than any version ever given to ``device``; recorded at once."""
    row = conn.execute(
        "SELECT MAX(v) FROM (SELECT version AS v FROM devcfg_highwater WHERE device = ? "
        "UNION ALL SELECT version FROM devcfg_devices WHERE device = ?)",
        (device, device),
    ).fetchone()
    version = int(row[0] or 0) + 1
    raise_highwater(conn, device, version)
    return version


def raise_highwater(conn: sqlite3.Connection, device: str, version: int) -> None:
    conn.execute(
        "INSERT INTO devcfg_highwater (device, version) VALUES (?, ?) "
        "ON CONFLICT(device) DO UPDATE SET version = MAX(version, excluded.version)",
        (device, version),
    )


def put_device(
    conn: sqlite3.Connection,
    device: str,
    role: str,
    version: int,
    document: dict[str, Any],
    *,
    layer_name: str,
    by: str,
    now: float,
) -> None:
    text = dumps(document)
    conn.execute(
        "INSERT INTO devcfg_devices (device, role, version, document, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(device) DO UPDATE SET role = excluded.role, "
        "version = excluded.version, document = excluded.document, "
        "updated_at = excluded.updated_at",
        (device, role, version, text, now),
    )
    conn.execute(
        "INSERT INTO devcfg_history (device, version, document, layer, by, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (device, version, text, layer_name, by, now),
    )
    conn.execute("DELETE FROM devcfg_removed WHERE device = ?", (device,))
