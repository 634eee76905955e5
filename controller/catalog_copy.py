"""The device's copy of the site catalog, in the device store's SQLite file.

Every catalog entity (wristbands, entitlements, tab postings, payments, time-stops and the
site's rules) is one row of ``catalog``: its key, the wristband it belongs to (so a tap
finds everything about a wristband with one indexed query) and its data as the JSON text
central published. A page of the change log is applied in one transaction with the new
version. A device too far behind takes a snapshot instead: its pages fill
``catalog_staging`` and the last one swaps the two tables and sets the version, in one
transaction, so a tap never sees half a catalog.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.rules.assemble import WristbandRecord
from entrada.errors import StoreError
from entrada.protocol import (
    CatalogSnapshot,
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    RulesChange,
    SnapshotCursor,
    TimeStopData,
    WristbandData,
)

logger = logging.getLogger(__name__)

_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    entity TEXT NOT NULL,
    key TEXT NOT NULL,
    uid TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (entity, key)
) WITHOUT ROWID;
"""
SCHEMA = (
    _TABLE.format(name="catalog")
    + "CREATE INDEX IF NOT EXISTS catalog_uid ON catalog (uid) WHERE uid IS NOT NULL;\n"
    + _TABLE.format(name="catalog_staging")
)


def _uid_of(entity: str, key: str, data: BaseModel) -> str | None:
    if entity == "wristband":
        return key
    uid = getattr(data, "uid", None)
    return uid if isinstance(uid, str) else None


def _row(change: Any) -> tuple[str, str, str | None, str | None]:
    """``(entity, key, uid, data JSON)`` of a change; data None for a delete."""
    data = change.data
    if change.op == "delete" or data is None:
        return change.entity, change.key, None, None
    return (
        change.entity,
        change.key,
        _uid_of(change.entity, change.key, data),
        data.model_dump_json(),
    )


class CatalogCopy:
    """Reads and writes the catalog tables on the device store's connection (owner thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # --------------------------------------------------------------- reading

    def wristband(self, uid: str) -> WristbandData | None:
        row = self._conn.execute(
            "SELECT data FROM catalog WHERE entity = 'wristband' AND key = ?", (uid,)
        ).fetchone()
        return None if row is None else _parse(WristbandData, row[0], "wristband", uid)

    def record(self, uid: str, passages: Sequence[PeerPassage] = ()) -> WristbandRecord:
        """Everything the catalog holds about ``uid``, with the given passages."""
        wristband: WristbandData | None = None
        entitlements: list[tuple[str, EntitlementData]] = []
        postings: list[tuple[str, PostingData]] = []
        payments: list[tuple[str, PaymentData]] = []
        timestops: list[TimeStopData] = []
        for entity, key, text in self._conn.execute(
            "SELECT entity, key, data FROM catalog WHERE uid = ?", (uid,)
        ):
            if entity == "wristband":
                wristband = _parse(WristbandData, text, entity, key)
            elif entity == "entitlement":
                entitlements.append((key, _parse(EntitlementData, text, entity, key)))
            elif entity == "posting":
                postings.append((key, _parse(PostingData, text, entity, key)))
            elif entity == "payment":
                payments.append((key, _parse(PaymentData, text, entity, key)))
            elif entity == "timestop":
                timestops.append(_parse(TimeStopData, text, entity, key))
        return WristbandRecord(
            uid, wristband, entitlements, tuple(passages), postings, payments, timestops
        )

    def rules(self) -> dict[str, Any] | None:
        """The site's rules document as published (None: none yet)."""
        row = self._conn.execute(
            "SELECT data FROM catalog WHERE entity = 'rules' AND key = 'site'"
        ).fetchone()
        if row is None:
            return None
        document: dict[str, Any] = json.loads(row[0])["document"]
        return document

    def count(self, entity: str | None = None) -> int:
        if entity is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM catalog").fetchone()[0])
        return int(
            self._conn.execute(
                "SELECT COUNT(*) FROM catalog WHERE entity = ?", (entity,)
            ).fetchone()[0]
        )

    # --------------------------------------------------------------- writing

    def apply(self, changes: Iterable[Any]) -> int | None:
        """Apply log changes in order (inside the caller's transaction), grouped into runs
        of the same operation so a large page costs a few ``executemany`` calls. Returns
        the version of the last rules change among them (None: the rules did not change)."""
        rules_version: int | None = None
        run_op: str | None = None
        run: list[tuple[Any, ...]] = []
        for change in changes:
            entity, key, uid, data = _row(change)
            if isinstance(change, RulesChange):
                rules_version = change.version
            op = "delete" if data is None else "upsert"
            if op != run_op and run:
                self._apply_run("catalog", run_op, run)
                run = []
            run_op = op
            run.append((entity, key) if data is None else (entity, key, uid, data))
        if run:
            self._apply_run("catalog", run_op, run)
        return rules_version

    def _apply_run(self, table: str, op: str | None, rows: list[tuple[Any, ...]]) -> None:
        if op == "delete":
            self._conn.executemany(
                f"DELETE FROM {table} WHERE entity = ? AND key = ?",  # noqa: S608 - fixed names
                rows,
            )
        else:
            self._conn.executemany(
                f"INSERT INTO {table} (entity, key, uid, data) VALUES (?, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (entity, key) DO UPDATE SET uid = excluded.uid, data = excluded.data",
                rows,
            )

    def bulk_replace(self, rows: Iterable[tuple[str, str, str | None, str]]) -> None:
        """Replace the whole catalog with ``(entity, key, uid, data JSON)`` rows (inside the
        caller's transaction): benchmarks and tests."""
        self._conn.execute("DELETE FROM catalog")
        self._conn.executemany(
            "INSERT INTO catalog (entity, key, uid, data) VALUES (?, ?, ?, ?)", rows
        )

    # -------------------------------------------------------------- snapshot

    def snapshot_cursor(self, meta: dict[str, str | None]) -> SnapshotCursor | None:
        """Where the snapshot being taken stands (from the store's meta values)."""
        as_of = meta.get("snapshot_as_of")
        if as_of is None:
            return None
        return SnapshotCursor(as_of=int(as_of), after=meta.get("snapshot_next"))

    def stage(self, page: CatalogSnapshot, current: SnapshotCursor | None) -> bool:
        """Add a snapshot page to the staging table (inside the caller's transaction).

        A page that starts a snapshot (``after`` None) empties the staging table first; a
        page that does not continue the snapshot being taken is refused (StoreError).
        True when this was the last page: call :meth:`swap` in the same transaction."""
        if page.after is None:
            self._conn.execute("DELETE FROM catalog_staging")
        elif current is None or current.as_of != page.as_of or current.after != page.after:
            raise StoreError(
                f"snapshot page after {page.after!r} of v{page.as_of} does not continue {current!r}"
            )
        rows = [_row(r) for r in page.rows if r.op == "upsert"]
        self._apply_run("catalog_staging", "upsert", rows)
        return page.next is None

    def swap(self) -> None:
        """Make the staged snapshot the catalog (inside the caller's transaction)."""
        self._conn.execute("DROP TABLE catalog")
        self._conn.execute("ALTER TABLE catalog_staging RENAME TO catalog")
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS catalog_uid ON catalog (uid) WHERE uid IS NOT NULL"
        )
        self._conn.execute(_TABLE.format(name="catalog_staging"))


def _parse(model: type[Any], text: str, entity: str, key: str) -> Any:
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        raise StoreError(f"catalog row {entity} {key!r} is corrupt: {err}") from err
