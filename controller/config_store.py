"""The device's applied config and its last known good one, in the device's SQLite file.

A desired config from central goes through three steps on the device: :meth:`stage`
records it as applied but not yet proven (the runtime then builds the new drivers and runs
its self-check), :meth:`commit` makes it the last known good one, :meth:`roll_back` puts
the last good one back and remembers which version failed and why, so the same version,
still retained at the broker, is not tried again on every reconnect. Each step is one
transaction. A device that restarts in the middle of an apply (power cut, crash caused by
the new config) finds it still staged: :meth:`recover` rolls it back before anything runs
on it.

Version 0 with an empty document is the device's own config file alone (nothing from
central applied yet).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from entrada.errors import StoreError

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS config_slots (
    slot TEXT PRIMARY KEY CHECK (slot IN ('applied', 'last_good', 'failed')),
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    code TEXT,
    reason TEXT
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class KeptConfig:
    """A config document from central and its version (0 and ``{}``: none yet)."""

    version: int
    document: dict[str, Any]


@dataclass(frozen=True)
class FailedConfig:
    """The newest version that was applied and rolled back, with why."""

    version: int
    code: str
    reason: str


NOTHING = KeptConfig(0, {})


class ConfigKeeper:
    """The ``config_slots`` table on the device store's connection (owner thread only).

    The connection should be in autocommit mode (``isolation_level=None``), as the device
    store's is; inside a transaction of the caller the keeper uses a savepoint."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        try:
            conn.execute(SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"device store: cannot create the config table: {err}") from err

    # ----------------------------------------------------------------- reading

    def _slot(self, slot: str) -> tuple[int, str, str | None, str | None] | None:
        row = self._conn.execute(
            "SELECT version, document, code, reason FROM config_slots WHERE slot = ?", (slot,)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), row[2], row[3])

    def _kept(self, slot: str) -> KeptConfig:
        row = self._slot(slot)
        if row is None:
            return NOTHING
        return KeptConfig(row[0], json.loads(row[1]))

    @property
    def applied(self) -> KeptConfig:
        """What the device runs now (during an apply: the version being tried)."""
        return self._kept("applied")

    @property
    def last_good(self) -> KeptConfig:
        """The newest version that passed its self-check."""
        return self._kept("last_good")

    @property
    def applied_version(self) -> int:
        row = self._slot("applied")
        return 0 if row is None else row[0]

    @property
    def failed(self) -> FailedConfig | None:
        row = self._slot("failed")
        if row is None:
            return None
        return FailedConfig(row[0], row[2] or "", row[3] or "")

    @property
    def pending(self) -> bool:
        """True between :meth:`stage` and :meth:`commit` or :meth:`roll_back`."""
        return self.applied_version != self.last_good.version

    # ----------------------------------------------------------------- writing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        c = self._conn
        try:
            if c.in_transaction:
                c.execute("SAVEPOINT config_keeper")
                try:
                    yield c
                except BaseException:
                    c.execute("ROLLBACK TO config_keeper")
                    c.execute("RELEASE config_keeper")
                    raise
                c.execute("RELEASE config_keeper")
                return
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
        except sqlite3.Error as err:
            raise StoreError(f"device store: config write failed: {err}") from err

    @staticmethod
    def _put(
        c: sqlite3.Connection,
        slot: str,
        version: int,
        document: dict[str, Any],
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        c.execute(
            "INSERT INTO config_slots (slot, version, document, code, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(slot) DO UPDATE SET version = excluded.version, "
            "document = excluded.document, code = excluded.code, reason = excluded.reason",
            (
                slot,
                version,
                json.dumps(document, sort_keys=True, separators=(",", ":")),
                code,
                reason,
            ),
        )

    def stage(self, version: int, document: dict[str, Any]) -> None:
        """Record ``version`` as the one being applied (not yet proven good). Refused when
        it is not newer than what runs, or while another apply is unfinished."""
        if self.pending:
            raise StoreError(
                f"config version {self.applied_version} is still being applied; "
                "commit or roll it back first"
            )
        if version <= self.applied_version:
            raise StoreError(
                f"config version {version} is not newer than the applied {self.applied_version}"
            )
        with self._tx() as c:
            self._put(c, "applied", version, document)
        logger.info("config version %d staged", version)

    def commit(self) -> KeptConfig:
        """The staged version passed its self-check: it becomes the last known good."""
        with self._tx() as c:
            applied = self.applied
            self._put(c, "last_good", applied.version, applied.document)
        logger.info("config version %d applied and kept as last good", applied.version)
        return applied

    def roll_back(self, code: str = "", reason: str = "") -> KeptConfig:
        """Give up the staged version: the last good one becomes the applied one again
        (and is returned), the staged version is remembered as failed with ``code`` and
        ``reason`` (which must hold no secret values)."""
        with self._tx() as c:
            tried, good = self.applied_version, self.last_good
            if tried != good.version:
                self._put(c, "failed", tried, {}, code, reason)
            self._put(c, "applied", good.version, good.document)
        logger.warning(
            "config version %d rolled back to %d: %s %s", tried, good.version, code, reason
        )
        return good

    def recover(self, code: str, reason: str) -> FailedConfig | None:
        """At start: a version still staged means the device stopped in the middle of
        applying it; roll it back before anything runs on it. Returns what failed (for
        the report), or None when there was nothing to undo."""
        if not self.pending:
            return None
        version = self.applied_version
        self.roll_back(code, reason)
        return FailedConfig(version, code, reason)
