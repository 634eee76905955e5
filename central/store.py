"""The central store's contract: events, watermarks, quarantine, registry, catalog.

:class:`Storage` is what the service codes against, so a PostgreSQL backend can replace
the SQLite one (:mod:`central.sqlite_store`) for a multi-worker site. The rules every
backend keeps:

- Events are keyed on ``(device, stream, seq)`` and inserted "or ignore": a duplicate is
  harmless and arrival order does not matter.
- A stream's *watermark* is the highest ``seq`` such that every ``seq`` at or below it is
  stored (as an event, or as a quarantined event whose stream and seq were readable). It
  only grows, and it is what central acknowledges; a device deletes what is at or below it.
- Each write method is one transaction; a batch of many devices is one transaction too.
- The catalog is a versioned change log over rows ``(entity, key) -> data`` (the entities
  and data models of :data:`entrada.protocol.ENTITY_DATA`): every changed row appends one
  entry with the next version (no gaps); writing a row that is already so appends nothing.
  The current rows are kept too, so a device too far behind (or behind the compacted part
  of the log) takes a snapshot of them instead. Every rules document is kept for good.

:func:`open_storage` picks the backend named by ``central.store`` in the config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel

from central.registry import DeviceRecord
from entrada.codes import Rejection
from entrada.errors import ProtocolError, StoreError
from entrada.protocol import ENTITY_DATA, CatalogChange, Event, Status

_CURSOR = re.compile(r"^([a-z]{1,32})/([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})$")

# ------------------------------------------------------------------------ values


class StoreResult(NamedTuple):
    """What storing one device's events did."""

    stored_new: int
    duplicates: int
    #: stream -> new watermark, only for streams whose watermark moved
    watermarks_changed: dict[str, int]


@dataclass(frozen=True)
class QuarantineRecord:
    """Something received that could not be stored as an event.

    With ``stream`` and ``seq`` set it is one unreadable event whose identity is known:
    it counts as stored for the watermark, so the device can let it go.
    """

    device: str | None
    topic: str
    payload: bytes
    code: str
    reason: str
    stream: str | None = None
    seq: int | None = None


@dataclass(frozen=True)
class DeviceBatch:
    """The events (and quarantined events) one device sent in one store batch."""

    device: str
    events: Sequence[Event]
    quarantined: Sequence[QuarantineRecord] = ()


class WristbandRow(NamedTuple):
    """A wristband row for the wristband-only calls; the fields of
    :class:`~entrada.protocol.WristbandData` with the uid first."""

    uid: str
    status: Literal["active", "blocked", "lost", "expired"] = "active"
    holder: str | None = None
    valid_until: float | None = None
    assurance: Literal["secure", "uid_only"] = "secure"
    deposit_minor: int = 0
    tab_limit_minor: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    device: str
    stream: str
    seq: int
    id: str
    kind: str
    ts: float
    data: dict[str, Any]
    received_at: float


def make_cursor(entity: str, key: str) -> str:
    """The snapshot cursor continuing after row ``(entity, key)``: ``"{entity}/{key}"``
    (neither contains a ``/``). Every backend pages snapshots in (entity, key) order."""
    return f"{entity}/{key}"


def parse_cursor(cursor: str) -> tuple[str, str]:
    """``(entity, key)`` of a snapshot cursor; ProtocolError (``reject.shape``) for one
    :func:`make_cursor` cannot have made (a device sends it back to us)."""
    match = _CURSOR.fullmatch(cursor)
    if match is None or match[1] not in ENTITY_DATA:
        raise ProtocolError(f"{Rejection.BAD_SHAPE}: snapshot cursor {cursor[:80]!r} is not ours")
    return match[1], match[2]


# ---------------------------------------------------------------------- contract


class Storage(Protocol):
    """What the central service needs from a store. All times are Unix seconds."""

    def store_batches(self, batches: Sequence[DeviceBatch], now: float) -> dict[str, StoreResult]:
        """Store the events and quarantined events of many devices in ONE durable
        transaction, advance watermarks and the devices' ``last_seen``. Duplicates are
        ignored (counted in ``duplicates``). Returns a result per device in ``batches``.
        Raises StoreError and stores nothing if the transaction fails."""
        ...

    def store_events(
        self,
        device: str,
        events: Sequence[Event],
        now: float,
        quarantined: Sequence[QuarantineRecord] = (),
    ) -> StoreResult:
        """:meth:`store_batches` for one device."""
        ...

    def quarantine(self, records: Sequence[QuarantineRecord], now: float) -> None:
        """Keep payloads that could not be stored, in one transaction. A record with a
        stream and seq counts for that stream's watermark; the same (device, stream, seq)
        is kept once."""
        ...

    def watermarks(self, device: str) -> dict[str, int]:
        """Every stream of ``device`` with its watermark (empty if never seen)."""
        ...

    def apply_status(self, status: Status, now: float, *, seen: bool = True) -> bool:
        """Record a device status if :func:`central.registry.accept_status` accepts it;
        True if it did. ``seen`` (false for a retained status replayed by the broker)
        says whether it proves the device alive now, i.e. updates ``last_seen``."""
        ...

    def devices(self) -> list[DeviceRecord]:
        """The whole registry, sorted by device id."""
        ...

    def catalog_head(self) -> int:
        """The catalog's latest version (0 when empty)."""
        ...

    def catalog_floor(self) -> int:
        """The smallest ``since`` the change log can still answer from: 0 when nothing was
        compacted, else the highest compacted version."""
        ...

    def catalog_changes(self, since: int, limit: int) -> list[CatalogChange]:
        """Up to ``limit`` change-log entries with ``version > since``, in version order,
        of every entity. Entries at or below :meth:`catalog_floor` are gone."""
        ...

    def catalog_apply(
        self, changes: Sequence[tuple[str, str, BaseModel | None]], now: float
    ) -> int:
        """Write ``(entity, key, data)`` rows (``data`` None: delete) in ONE transaction.
        Each row that really changes appends one log entry with the next version; a row
        equal to the stored one, or the delete of a missing one, appends nothing. Rules
        changes are also kept in the rules history (:meth:`rules_document`). Returns the
        head. Every change is checked against the wire contract first
        (:data:`entrada.protocol.CATALOG_CHANGE`): one invalid and StoreError is raised
        with nothing written."""
        ...

    def catalog_row(self, entity: str, key: str) -> BaseModel | None:
        """One row's data as the catalog has it now (its entity's data model)."""
        ...

    def catalog_rows_for_uid(self, uid: str) -> list[tuple[str, str, int, BaseModel]]:
        """``(entity, key, version, data)`` of the entitlements, postings, payments and
        time stops of wristband ``uid``, in version order."""
        ...

    def catalog_snapshot(
        self, after: str | None, limit: int
    ) -> tuple[list[CatalogChange], str | None]:
        """Up to ``limit`` current rows as ``upsert`` changes (each with its row's
        version), in (entity, key) order after the opaque cursor ``after`` (None: from
        the start), and the cursor that continues them (None when no row is left).
        Raises ProtocolError for a cursor this store did not make."""
        ...

    def compact_catalog(self, keep: int, max_rows: int | None = None) -> int:
        """Delete change-log entries with ``version <= head - keep`` (never the newest
        ``keep``; at most ``max_rows`` of them when given) and record the new floor
        durably. Returns how many entries went."""
        ...

    def rules_document(self, at_version: int | None = None) -> tuple[int, dict[str, Any]] | None:
        """``(version, document)`` of the rules in force at catalog version
        ``at_version`` (the latest published at or before it; None: the latest), or None
        when there were none (never published, or deleted)."""
        ...

    def catalog_upsert_wristbands(self, rows: Iterable[WristbandRow], now: float) -> int:
        """Insert or update wristbands (:meth:`catalog_apply` of ``wristband`` rows).
        Raises StoreError (nothing written) if a row is invalid."""
        ...

    def catalog_delete_wristbands(self, uids: Iterable[str], now: float) -> int:
        """Delete wristbands; each one that existed appends a ``delete`` entry. Returns
        the new head."""
        ...

    def wristband(self, uid: str) -> WristbandRow | None:
        """One wristband as the catalog has it now."""
        ...

    def count_events(self, kind: str | None = None, device: str | None = None) -> int:
        """How many events are stored, optionally of one kind and/or one device."""
        ...

    def event_counts(self) -> dict[str, int]:
        """Stored events per kind."""
        ...

    def events(self, kind: str | None = None, device: str | None = None) -> Iterator[StoredEvent]:
        """Stored events in (device, stream, seq) order, lazily."""
        ...

    def count_quarantined(self, device: str | None = None) -> int:
        """How many quarantine records are kept."""
        ...

    def close(self) -> None:
        """Release the connection; the object is unusable afterwards."""
        ...


def open_storage(
    backend: str,
    path: str | Path,
    synchronous: Literal["NORMAL", "FULL"] = "FULL",
    *,
    readonly: bool = False,
) -> Storage:
    """Open the store backend named in the config (``central.store``)."""
    if backend == "sqlite":
        from central.sqlite_store import SqliteStorage  # the backend imports this module

        return SqliteStorage(path, synchronous, readonly=readonly)
    raise StoreError(f"unknown store backend {backend!r}")


def __getattr__(name: str) -> Any:
    """``from central.store import SqliteStorage`` works too (imported lazily: the backend
    module imports the values above)."""
    if name == "SqliteStorage":
        from central.sqlite_store import SqliteStorage

        return SqliteStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
