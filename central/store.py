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
- The catalog is a versioned change log: every changed row appends one entry with a
  strictly increasing version; writing a row that is already so appends nothing.

:func:`open_storage` picks the backend named by ``central.store`` in the config.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from central.registry import DeviceRecord
from entrada.errors import StoreError
from entrada.protocol import CatalogChange, Event, Status

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
    uid: str
    status: Literal["active", "blocked", "lost", "expired"] = "active"
    holder: str | None = None
    valid_until: float | None = None


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

    def catalog_changes(self, since: int, limit: int) -> list[CatalogChange]:
        """Up to ``limit`` change-log entries with ``version > since``, in version order."""
        ...

    def catalog_upsert_wristbands(self, rows: Iterable[WristbandRow], now: float) -> int:
        """Insert or update wristbands in one transaction; each row that changes appends
        one log entry, an unchanged row appends nothing. Returns the new head. Raises
        StoreError (nothing written) if a row is invalid."""
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
