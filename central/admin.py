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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TextIO, get_args

from pydantic import TypeAdapter, ValidationError

from central.registry import DeviceView, view
from central.sqlite_store import SqliteStorage
from central.store import WristbandRow
from entrada.errors import EntradaError
from entrada.protocol import Uid, WristbandData

#: The wristband states the catalog knows.
STATUSES: tuple[str, ...] = get_args(WristbandData.model_fields["status"].annotation)
#: How hard a medium is to clone (``uid_only`` media never carry a tab).
ASSURANCES: tuple[str, ...] = get_args(WristbandData.model_fields["assurance"].annotation)
CSV_COLUMNS = (
    "uid",
    "status",
    "holder",
    "valid_until",
    "assurance",
    "deposit_minor",
    "tab_limit_minor",
)
#: Fields of a wristband a person may set (all but the uid).
WRISTBAND_FIELDS = CSV_COLUMNS[1:]
_UID = TypeAdapter(Uid)
#: ``(uid, status, holder[, valid_until[, assurance[, deposit_minor[, tab_limit_minor]]]])``
#: with valid_until in Unix seconds and the amounts in integer minor units.
WristbandInput = tuple[Any, ...]


class CatalogInputError(EntradaError):
    """Catalog rows given by a person are invalid; ``errors`` lists every problem."""

    def __init__(self, errors: list[str], source: str = "", what: str = "wristband row(s)") -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{where}{len(self.errors)} invalid {what}:\n{lines}")


def normalise_uid(uid: str) -> str:
    """``de:ad:be:ef`` and ``DE AD BE EF`` are ``DEADBEEF``."""
    return "".join(ch for ch in uid.strip().upper() if ch not in ": -")


def _check_uid(uid: object) -> str:
    """The normalised uid, or ValueError."""
    try:
        return _UID.validate_python(normalise_uid(uid) if isinstance(uid, str) else uid)
    except ValidationError as err:
        raise ValueError(f"uid {uid!r} is not 8 to 20 hex digits") from err


def _check_row(
    uid: object,
    status: object,
    holder: object,
    valid_until: object,
    assurance: object = None,
    deposit_minor: object = None,
    tab_limit_minor: object = None,
) -> tuple[WristbandRow | None, str | None]:
    """A validated row, or the reason it is not one (empty values take the defaults)."""
    try:
        data = WristbandData.model_validate(
            {
                "status": status or "active",
                "holder": holder or None,
                "valid_until": valid_until,
                "assurance": assurance or "secure",
                "deposit_minor": 0 if deposit_minor is None else deposit_minor,
                "tab_limit_minor": tab_limit_minor,
            }
        )
    except ValidationError as err:
        e = err.errors()[0]
        return None, f"{e['loc'][0]}: {e['msg']}"
    try:
        key = _check_uid(uid)
    except ValueError as err:
        return None, str(err)
    return WristbandRow(key, **data.model_dump()), None


def _validated(rows: Iterable[Sequence[object]], source: str) -> list[WristbandRow]:
    good: list[WristbandRow] = []
    errors: list[str] = []
    for n, raw in enumerate(rows, 1):
        if not 1 <= len(raw) <= len(CSV_COLUMNS):
            errors.append(f"row {n}: expected ({', '.join(CSV_COLUMNS)}), the first 1 to 7")
            continue
        row, problem = _check_row(*(*raw, *[None] * len(CSV_COLUMNS))[: len(CSV_COLUMNS)])
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
    """Insert or update whole wristbands ``(uid, status, holder[, valid_until[, assurance[,
    deposit_minor[, tab_limit_minor]]]])`` in one transaction (fields left out take their
    defaults); returns the catalog head. Every row is checked first: one bad row and
    nothing is written (CatalogInputError lists all bad rows)."""
    checked = _validated(rows, "wristbands")
    with SqliteStorage(db_path) as store:
        return store.catalog_upsert_wristbands(checked, time.time() if now is None else now)


def update_wristbands(
    db_path: str | Path,
    uids: Sequence[str],
    fields: Mapping[str, Any],
    *,
    now: float | None = None,
) -> int:
    """Set ``fields`` (names of :data:`WRISTBAND_FIELDS`) on each wristband of ``uids`` in
    one transaction, keeping its other fields; a new wristband takes the defaults for
    them. An empty ``holder`` clears it. Returns the catalog head; CatalogInputError
    lists every problem and nothing is written."""
    errors = [f"unknown field {f!r}" for f in fields if f not in WRISTBAND_FIELDS]
    if errors:
        raise CatalogInputError(errors, "wristbands")
    changes = {**fields}
    if "holder" in changes:
        changes["holder"] = changes["holder"] or None
    checked: list[str] = []
    for n, uid in enumerate(uids, 1):
        try:
            checked.append(_check_uid(uid))
        except ValueError as err:
            errors.append(f"row {n}: {err}")
    with SqliteStorage(db_path) as store:
        rows: list[WristbandRow] = []
        for uid in checked:
            current = store.wristband(uid)
            base = current._asdict() if current is not None else {"uid": uid}
            merged = {**base, **changes}
            row, problem = _check_row(*(merged.get(c) for c in CSV_COLUMNS))
            if row is None:
                errors.append(f"{uid}: {problem}")
            else:
                rows.append(row)
        if errors:
            raise CatalogInputError(errors, "wristbands")
        return store.catalog_upsert_wristbands(rows, time.time() if now is None else now)


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


def parse_minor(text: str, column: str) -> int | None:
    """A whole number of minor units from a CSV cell (empty: None); never a float."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{column} {text!r} is not a whole number of minor units")
    return int(text)


class CsvRecords(NamedTuple):
    """A CSV file read by :func:`read_csv`: its records by line, and what was wrong."""

    source: str
    fields: list[str]
    records: list[tuple[int, dict[str, str]]]
    #: ``(line, "line N: what is wrong")``; callers add theirs and report them sorted
    errors: list[tuple[int, str]]


def read_csv(
    file: str | Path | TextIO, columns: Sequence[str], required: Sequence[str], what: str
) -> CsvRecords:
    """Read a CSV with a header naming some of ``columns`` (case-insensitive, any order,
    ``required`` ones present). A file that cannot be read or a bad header raise
    CatalogInputError; lines with too many values are listed in ``errors``."""
    if isinstance(file, str | Path):
        source = str(file)
        try:
            text = Path(file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise CatalogInputError([f"cannot read: {err}"], source, what) from err
        handle: TextIO = io.StringIO(text)
    else:
        source, handle = getattr(file, "name", "<csv>"), file
    reader = csv.DictReader(handle)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if not set(required) <= set(fields):
        raise CatalogInputError(
            [f"header must name the columns, e.g. {','.join(columns)}"], source, what
        )
    unknown = [f for f in fields if f not in columns]
    if unknown:
        raise CatalogInputError(
            [f"unknown column(s) {', '.join(unknown)}; known: {', '.join(columns)}"],
            source,
            what,
        )
    reader.fieldnames = fields
    records: list[tuple[int, dict[str, str]]] = []
    errors: list[tuple[int, str]] = []
    for record in reader:
        if None in record:
            errors.append((reader.line_num, f"line {reader.line_num}: more values than columns"))
        else:
            records.append((reader.line_num, {k: (v or "").strip() for k, v in record.items()}))
    return CsvRecords(source, fields, records, errors)


def _read_wristbands(file: str | Path | TextIO) -> tuple[list[WristbandRow], list[str]]:
    """The checked rows of a wristband CSV and the columns its header names."""
    csv_file = read_csv(file, CSV_COLUMNS, ("uid",), "wristband row(s)")
    rows: list[WristbandRow] = []
    errors = list(csv_file.errors)
    first_line: dict[str, int] = {}
    for line, record in csv_file.records:
        try:
            valid_until = _parse_valid_until(record.get("valid_until", ""))
            deposit = parse_minor(record.get("deposit_minor", ""), "deposit_minor")
            tab_limit = parse_minor(record.get("tab_limit_minor", ""), "tab_limit_minor")
        except ValueError as err:
            errors.append((line, f"line {line}: {err}"))
            continue
        row, problem = _check_row(
            record.get("uid", ""),
            record.get("status", ""),
            record.get("holder", ""),
            valid_until,
            record.get("assurance", ""),
            deposit,
            tab_limit,
        )
        if problem is not None or row is None:
            errors.append((line, f"line {line}: {problem}"))
        elif row.uid in first_line:
            errors.append(
                (line, f"line {line}: uid {row.uid} already on line {first_line[row.uid]}")
            )
        else:
            first_line[row.uid] = line
            rows.append(row)
    if errors:
        raise CatalogInputError([e for _, e in sorted(errors)], csv_file.source)
    return rows, csv_file.fields


def read_wristbands_csv(file: str | Path | TextIO) -> list[WristbandRow]:
    """Parse and check a wristband CSV (header naming some of ``uid,status,holder,
    valid_until,assurance,deposit_minor,tab_limit_minor``; only ``uid`` is required).
    Raises CatalogInputError listing every bad line."""
    return _read_wristbands(file)[0]


def import_wristbands_csv(
    db_path: str | Path, file: str | Path | TextIO, *, now: float | None = None
) -> int:
    """Import a wristband CSV in one transaction (all or nothing); returns the catalog
    head. A column the header does not name keeps the wristband's current value (a new
    wristband takes the default); an empty cell is the default. Rows equal to what the
    catalog has append nothing to the change log."""
    rows, fields = _read_wristbands(file)
    absent = [f for f in WRISTBAND_FIELDS if f not in fields]
    with SqliteStorage(db_path) as store:
        if absent:
            merged = []
            for row in rows:
                current = store.wristband(row.uid)
                if current is not None:
                    row = row._replace(**{f: getattr(current, f) for f in absent})
                merged.append(row)
            rows = merged
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
