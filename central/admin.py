"""Administration of the central store, for the CLI and the demo.

These functions open the store file themselves, so they work while the service runs (WAL
mode lets one process write the catalog while the service ingests; the service notices a
new catalog head within half a second and publishes it). Writes go through
:class:`~central.store.SqliteStorage`; reports open the file read-only. They return data
and raise :class:`~entrada.errors.EntradaError` subclasses; printing is the CLI's job.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, get_args

from pydantic import TypeAdapter, ValidationError

from central.registry import DeviceView, view
from central.sqlite_store import SqliteStorage
from central.store import WristbandRow
from entrada.errors import EntradaError
from entrada.protocol import Uid, WristbandData

#: The wristband states the catalog knows.
STATUSES: tuple[str, ...] = get_args(WristbandData.model_fields["status"].annotation)
CSV_COLUMNS = ("uid", "status", "holder", "valid_until")
_UID = TypeAdapter(Uid)
#: ``(uid, status, holder)`` or ``(uid, status, holder, valid_until)`` (Unix seconds)
WristbandInput = tuple[str, str, str | None] | tuple[str, str, str | None, float | None]


class CatalogInputError(EntradaError):
    """Catalog rows given by a person are invalid; ``errors`` lists every problem."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{where}{len(self.errors)} invalid wristband row(s):\n{lines}")


def normalise_uid(uid: str) -> str:
    """``de:ad:be:ef`` and ``DE AD BE EF`` are ``DEADBEEF``."""
    return "".join(ch for ch in uid.strip().upper() if ch not in ": -")


def _check_row(
    uid: object, status: object, holder: object, valid_until: object
) -> tuple[WristbandRow | None, str | None]:
    """A validated row, or the reason it is not one."""
    try:
        data = WristbandData.model_validate(
            {"status": status or "active", "holder": holder or None, "valid_until": valid_until}
        )
    except ValidationError as err:
        e = err.errors()[0]
        return None, f"{e['loc'][0]}: {e['msg']}"
    try:
        key = _UID.validate_python(normalise_uid(uid) if isinstance(uid, str) else uid)
    except ValidationError:
        return None, f"uid {uid!r} is not 8 to 20 hex digits"
    return WristbandRow(key, data.status, data.holder, data.valid_until), None


def _validated(rows: Iterable[Sequence[object]], source: str) -> list[WristbandRow]:
    good: list[WristbandRow] = []
    errors: list[str] = []
    for n, raw in enumerate(rows, 1):
        if not 1 <= len(raw) <= 4:
            errors.append(f"row {n}: expected (uid, status, holder[, valid_until])")
            continue
        row, problem = _check_row(*(*raw, None, None, None)[:4])
        if row is None:
            errors.append(f"row {n}: {problem}")
        else:
            good.append(row)
    if errors:
        raise CatalogInputError(errors, source)
    return good


def set_wristbands(
    db_path: str | Path,
    rows: Sequence[WristbandInput],
    *,
    now: float | None = None,
) -> int:
    """Insert or update wristbands ``(uid, status, holder[, valid_until])`` in one
    transaction; returns the catalog head. Every row is checked first: one bad row and
    nothing is written (CatalogInputError lists all bad rows)."""
    checked = _validated(rows, "wristbands")
    with SqliteStorage(db_path) as store:
        return store.catalog_upsert_wristbands(checked, time.time() if now is None else now)


def delete_wristbands(db_path: str | Path, uids: Iterable[str], *, now: float | None = None) -> int:
    """Remove wristbands from the catalog; returns the catalog head."""
    with SqliteStorage(db_path) as store:
        return store.catalog_delete_wristbands(
            [normalise_uid(u) for u in uids], time.time() if now is None else now
        )


def _parse_valid_until(text: str) -> float | None:
    """Unix seconds, or ISO 8601 with a UTC offset (required: a local time is never
    guessed)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"valid_until {text!r} is not a finite number")
        return value
    try:
        when = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"valid_until {text!r} is neither Unix seconds nor ISO 8601") from err
    if when.tzinfo is None:
        raise ValueError(f"valid_until {text!r} needs a UTC offset, e.g. {text}+01:00")
    return when.timestamp()


def read_wristbands_csv(file: str | Path | TextIO) -> list[WristbandRow]:
    """Parse and check a wristband CSV (header ``uid,status,holder,valid_until``; only
    ``uid`` is required). Raises CatalogInputError listing every bad line."""
    if isinstance(file, str | Path):
        source = str(file)
        try:
            text = Path(file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise CatalogInputError([f"cannot read: {err}"], source) from err
        handle: TextIO = io.StringIO(text)
    else:
        source, handle = getattr(file, "name", "<csv>"), file
    reader = csv.DictReader(handle)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "uid" not in fields:
        raise CatalogInputError(
            [f"header must name the columns, e.g. {','.join(CSV_COLUMNS)}"], source
        )
    unknown = [f for f in fields if f not in CSV_COLUMNS]
    if unknown:
        raise CatalogInputError(
            [f"unknown column(s) {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"], source
        )
    reader.fieldnames = fields
    rows: list[WristbandRow] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            errors.append(f"line {line}: more values than columns")
            continue
        try:
            valid_until = _parse_valid_until(record.get("valid_until") or "")
        except ValueError as err:
            errors.append(f"line {line}: {err}")
            continue
        row, problem = _check_row(
            record.get("uid") or "",
            (record.get("status") or "").strip(),
            (record.get("holder") or "").strip(),
            valid_until,
        )
        if problem is not None or row is None:
            errors.append(f"line {line}: {problem}")
        elif row.uid in first_line:
            errors.append(f"line {line}: uid {row.uid} already on line {first_line[row.uid]}")
        else:
            first_line[row.uid] = line
            rows.append(row)
    if errors:
        raise CatalogInputError(errors, source)
    return rows


def import_wristbands_csv(
    db_path: str | Path, file: str | Path | TextIO, *, now: float | None = None
) -> int:
    """Import a wristband CSV in one transaction (all or nothing); returns the catalog
    head. Rows equal to what the catalog has append nothing to the change log."""
    rows = read_wristbands_csv(file)
    with SqliteStorage(db_path) as store:
        return store.catalog_upsert_wristbands(rows, time.time() if now is None else now)


def catalog_head(db_path: str | Path) -> int:
    with SqliteStorage(db_path, readonly=True) as store:
        return store.catalog_head()


def device_views(
    db_path: str | Path, offline_after: float, *, now: float | None = None
) -> list[DeviceView]:
    """The registry, typed: presence is ``stale`` for an online device silent too long."""
    with SqliteStorage(db_path, readonly=True) as store:
        records = store.devices()
    return view(records, time.time() if now is None else now, offline_after)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def list_devices(
    db_path: str | Path, offline_after: float, *, now: float | None = None
) -> list[dict[str, Any]]:
    """The registry as ``entrada devices`` shows it, one plain dict per device (sorted):
    ``device``, ``role`` (``"-"`` if never announced), ``state`` (online, offline, stale
    or unknown), ``epoch``, ``outbox_depth``, ``faults``, ``software``, ``config_version``,
    ``catalog_version``, ``last_seen`` (Unix s or None), ``silent_for`` (s or None) and
    ``last_seen_text`` ("12s ago", "never")."""
    rows = []
    for v in device_views(db_path, offline_after, now=now):
        row = asdict(v)
        row["state"] = str(v.presence)
        row["role"] = v.role or "-"
        row["last_seen_text"] = _ago(v.silent_for)
        del row["presence"]
        rows.append(row)
    return rows


def event_counts(db_path: str | Path) -> dict[str, int]:
    """Stored events per kind."""
    with SqliteStorage(db_path, readonly=True) as store:
        return store.event_counts()
