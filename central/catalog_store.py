"""The catalog half of the SQLite central store: current rows, change log, snapshots.

Tables (created by :mod:`central.sqlite_store` with the rest of the schema):

- ``catalog_rows(entity, key, version, data)``: the catalog as it is now, one row per
  thing, ``data`` the JSON of the entity's data model (:data:`entrada.protocol.ENTITY_DATA`)
  and ``version`` the change that last wrote it. An expression index on
  ``json_extract(data, '$.uid')`` finds a wristband's entitlements, postings, payments and
  time stops.
- ``catalog_log(version, entity, op, key, data, ts)``: every change, one version each,
  strictly increasing and without gaps. Old entries are compacted away
  (:meth:`SqliteCatalog.compact_catalog`); the highest version removed is the *floor*,
  kept in ``meta``: a device behind it takes a snapshot of ``catalog_rows`` instead.
- ``rules_versions(version, document, ts)``: every rules document ever published, never
  compacted, so central can replay an old decision against the rules in force then.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from central.store import WristbandRow, make_cursor, parse_cursor
from entrada.errors import StoreError
from entrada.protocol import (
    CATALOG_CHANGE,
    ENTITY_DATA,
    CatalogChange,
    RulesData,
    Uid,
    WristbandData,
)

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: The catalog's tables; the index only holds rows whose data names a uid.
CATALOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog_rows (
    entity TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (entity, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS catalog_rows_uid ON catalog_rows (json_extract(data, '$.uid'))
    WHERE json_extract(data, '$.uid') IS NOT NULL;
CREATE TABLE IF NOT EXISTS catalog_log (
    version INTEGER PRIMARY KEY, entity TEXT NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
    data TEXT, ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rules_versions (
    version INTEGER PRIMARY KEY, document TEXT, ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Entities whose data carries the wristband ``uid`` they belong to.
UID_ENTITIES = ("entitlement", "posting", "payment", "timestop")
#: Largest JSON of one row: every row must fit a page under the MQTT payload limit.
MAX_ROW_BYTES = 256 * 1024
_FLOOR = "catalog_floor"
_UID = TypeAdapter(Uid)


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn sqlite3 errors escaping a read method into StoreError."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err

    return wrapper


def migrate(c: sqlite3.Connection, from_version: int) -> None:
    """Bring an older store's catalog up to date (inside the schema transaction).

    Schema 1 kept only wristbands, in a ``wristbands`` table: copy them into
    ``catalog_rows`` with their versions, then drop the table.
    """
    if from_version >= 2:
        return
    exists = c.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'wristbands'"
    ).fetchone()
    if exists is None:
        return
    rows = c.execute("SELECT uid, status, holder, valid_until, version FROM wristbands").fetchall()
    try:
        c.executemany(
            "INSERT OR REPLACE INTO catalog_rows (entity, key, version, data) "
            "VALUES ('wristband', ?, ?, ?)",
            [
                (
                    uid,
                    version,
                    WristbandData(
                        status=status, holder=holder, valid_until=valid_until
                    ).model_dump_json(),
                )
                for uid, status, holder, valid_until, version in rows
            ],
        )
    except ValidationError as err:
        raise StoreError(f"cannot migrate a wristband of schema 1: {err}") from err
    c.execute("DROP TABLE wristbands")
    logger.info("central store: %d wristbands moved to catalog_rows (schema 1 -> 2)", len(rows))


def _data(entity: str, text: str) -> BaseModel:
    model = ENTITY_DATA.get(entity)
    if model is None:
        raise StoreError(f"unknown catalog entity {entity!r} in the store")
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        raise StoreError(f"corrupt catalog {entity} row: {err.errors()[0]['msg']}") from err


def _change(version: int, entity: str, op: str, key: str, text: str | None) -> CatalogChange:
    data = _data(entity, text) if text is not None else None
    try:
        return CATALOG_CHANGE.validate_python(
            {"version": version, "entity": entity, "op": op, "key": key, "data": data}
        )
    except ValidationError as err:
        raise StoreError(f"corrupt catalog entry {entity}/{key}: {err.errors()[0]['msg']}") from err


def _check(entity: str, key: str, data: BaseModel | None) -> tuple[BaseModel | None, str | None]:
    """The validated data and its JSON, or ValueError saying what is wrong."""
    if entity not in ENTITY_DATA:
        raise ValueError(f"unknown entity {entity!r}")
    try:
        change = CATALOG_CHANGE.validate_python(
            {
                "version": 1,
                "entity": entity,
                "op": "delete" if data is None else "upsert",
                "key": key,
                "data": data,
            }
        )
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"][1:]) or entity
        raise ValueError(f"{where}: {e['msg']}") from err
    if change.data is None:
        return None, None
    text = change.data.model_dump_json()
    if len(text.encode("utf-8")) > MAX_ROW_BYTES:
        raise ValueError(f"data is larger than {MAX_ROW_BYTES} bytes")
    return change.data, text


class SqliteCatalog:
    """The catalog methods of :class:`central.sqlite_store.SqliteStorage` (a mixin: the
    store provides the connection and its write transactions)."""

    path: Path
    _conn: sqlite3.Connection

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # provided by the store

    # ----------------------------------------------------------------- reads

    @staticmethod
    def _floor(c: sqlite3.Connection) -> int:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (_FLOOR,)).fetchone()
        return int(row[0]) if row is not None else 0

    @classmethod
    def _head(cls, c: sqlite3.Connection) -> int:
        last = c.execute("SELECT COALESCE(MAX(version), 0) FROM catalog_log").fetchone()[0]
        return max(int(last), cls._floor(c))

    @translated
    def catalog_head(self) -> int:
        return self._head(self._conn)

    @translated
    def catalog_floor(self) -> int:
        return self._floor(self._conn)

    @translated
    def catalog_changes(self, since: int, limit: int) -> list[CatalogChange]:
        rows = self._conn.execute(
            "SELECT version, entity, op, key, data FROM catalog_log WHERE version > ? "
            "ORDER BY version LIMIT ?",
            (since, limit),
        ).fetchall()
        return [_change(*row) for row in rows]

    @translated
    def catalog_row(self, entity: str, key: str) -> BaseModel | None:
        if entity not in ENTITY_DATA:
            raise StoreError(f"unknown catalog entity {entity!r}")
        row = self._conn.execute(
            "SELECT data FROM catalog_rows WHERE entity = ? AND key = ?", (entity, key)
        ).fetchone()
        return _data(entity, row[0]) if row is not None else None

    @translated
    def catalog_rows_for_uid(self, uid: str) -> list[tuple[str, str, int, BaseModel]]:
        rows = self._conn.execute(
            "SELECT entity, key, version, data FROM catalog_rows "
            "WHERE json_extract(data, '$.uid') = ? ORDER BY version",
            (uid,),
        ).fetchall()
        return [(e, k, v, _data(e, d)) for e, k, v, d in rows if e in UID_ENTITIES]

    @translated
    def catalog_snapshot(
        self, after: str | None, limit: int
    ) -> tuple[list[CatalogChange], str | None]:
        if limit < 1:
            raise StoreError(f"snapshot limit must be at least 1, got {limit}")
        sql = "SELECT entity, key, version, data FROM catalog_rows"
        args: tuple[Any, ...] = ()
        if after is not None:
            sql += " WHERE (entity, key) > (?, ?)"
            args = parse_cursor(after)
        rows = self._conn.execute(
            sql + " ORDER BY entity, key LIMIT ?", (*args, limit + 1)
        ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        changes = [_change(v, e, "upsert", k, d) for e, k, v, d in rows]
        return changes, make_cursor(rows[-1][0], rows[-1][1]) if more else None

    @translated
    def rules_document(self, at_version: int | None = None) -> tuple[int, dict[str, Any]] | None:
        if at_version is None:
            row = self._conn.execute(
                "SELECT version, document FROM rules_versions ORDER BY version DESC LIMIT 1"
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT version, document FROM rules_versions WHERE version <= ? "
                "ORDER BY version DESC LIMIT 1",
                (at_version,),
            ).fetchone()
        if row is None or row[1] is None:  # never published, or withdrawn
            return None
        return int(row[0]), json.loads(row[1])

    # ---------------------------------------------------------------- writes

    def catalog_apply(
        self, changes: Sequence[tuple[str, str, BaseModel | None]], now: float
    ) -> int:
        checked: list[tuple[str, str, BaseModel | None, str | None]] = []
        errors: list[str] = []
        for n, (entity, key, data) in enumerate(changes, 1):
            try:
                checked.append((entity, key, *_check(entity, key, data)))
            except ValueError as err:
                errors.append(f"change {n} ({entity} {key!r}): {err}")
        if errors:
            more = f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
            shown = "; ".join(errors[:10]) + more
            raise StoreError(f"{len(errors)} invalid catalog change(s), nothing written: {shown}")
        with self._write() as c:
            head = self._head(c)
            for entity, key, data, text in checked:
                row = c.execute(
                    "SELECT data FROM catalog_rows WHERE entity = ? AND key = ?", (entity, key)
                ).fetchone()
                if data is None:
                    if row is None:
                        continue
                    head += 1
                    c.execute(
                        "DELETE FROM catalog_rows WHERE entity = ? AND key = ?", (entity, key)
                    )
                elif row is not None and self._same(entity, row[0], data, text):
                    continue
                else:
                    head += 1
                    c.execute(
                        "INSERT INTO catalog_rows (entity, key, version, data) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (entity, key) DO UPDATE SET "
                        "version = excluded.version, data = excluded.data",
                        (entity, key, head, text),
                    )
                c.execute(
                    "INSERT INTO catalog_log (version, entity, op, key, data, ts) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (head, entity, "delete" if data is None else "upsert", key, text, now),
                )
                if entity == "rules":
                    document = json.dumps(data.document) if isinstance(data, RulesData) else None
                    c.execute(
                        "INSERT INTO rules_versions (version, document, ts) VALUES (?, ?, ?)",
                        (head, document, now),
                    )
            return head

    @staticmethod
    def _same(entity: str, stored: str, data: BaseModel, text: str | None) -> bool:
        """Whether the stored row already says ``data`` (compared as models, so a row
        written before a field was added still counts as unchanged)."""
        if stored == text:
            return True
        try:
            return _data(entity, stored) == data
        except StoreError:
            return False

    def compact_catalog(self, keep: int, max_rows: int | None = None) -> int:
        if keep < 1:
            raise StoreError(f"compaction must keep at least 1 version, got {keep}")
        with self._write() as c:
            floor = self._floor(c)
            cut = self._head(c) - keep
            if max_rows is not None:
                cut = min(cut, floor + max_rows)
            if cut <= floor:
                return 0
            removed = c.execute("DELETE FROM catalog_log WHERE version <= ?", (cut,)).rowcount
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_FLOOR, cut),
            )
            return int(removed)

    # ------------------------------------------------- wristbands (the old API)

    def catalog_upsert_wristbands(self, rows: Iterable[WristbandRow], now: float) -> int:
        changes: list[tuple[str, str, BaseModel | None]] = []
        for raw in rows:
            row = WristbandRow(*raw)
            try:
                uid = _UID.validate_python(row.uid)
                fields = row._asdict()
                del fields["uid"]
                data = WristbandData.model_validate(fields)
            except ValidationError as err:
                raise StoreError(f"invalid wristband {row!r}: {err.errors()[0]['msg']}") from err
            changes.append(("wristband", uid, data))
        return self.catalog_apply(changes, now)

    def catalog_delete_wristbands(self, uids: Iterable[str], now: float) -> int:
        return self.catalog_apply([("wristband", uid, None) for uid in uids], now)

    def wristband(self, uid: str) -> WristbandRow | None:
        data = self.catalog_row("wristband", uid)
        if not isinstance(data, WristbandData):
            return None
        return WristbandRow(uid, **data.model_dump())
