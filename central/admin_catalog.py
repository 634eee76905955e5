"""Administration of the rest of the catalog: the site's rules, entitlements, the open tab.

Like :mod:`central.admin` (wristbands), these functions open the store file themselves,
so they work while the service runs; they return data and raise
:class:`~entrada.errors.EntradaError` subclasses, and printing is the CLI's job.

- **Rules** (:func:`publish_rules`): one document, entity ``rules`` key ``site``, in the
  shape of :class:`controller.rules.catalog_schema.CatalogDoc` without ``version`` (the
  catalog version it is published at is its version). It is checked exactly as a device
  will check it before anything is written.
- **Entitlements** (:func:`entitle`, :func:`import_entitlements_csv`): products held by a
  wristband; the tariff must exist in the current rules. Writing an entitlement that
  exists keeps its usage baseline (``entries_used``, ``first_used``, ``days_used``).
- **Tab** (:func:`post_to_tab`, :func:`pay_tab`, :func:`stop_time`): postings, payments
  and kiosk time stops keyed by a reference, so a retried command with the same
  reference writes nothing twice. A posting is authorised by the rules engine
  (:func:`controller.rules.tabs.authorize_posting`): UID-only media and tabs over their
  limit are refused with a stable code.
"""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError

from central.admin import CatalogInputError, normalise_uid, read_csv
from central.sqlite_store import SqliteStorage
from central.store import Storage
from controller.rules.assemble import tab_of
from controller.rules.catalog_schema import parse_catalog
from controller.rules.decision import Explanation
from controller.rules.errors import CatalogError
from controller.rules.model import (
    Assurance,
    Credential,
    Entitlements,
    MediaStatus,
    Site,
    Tab,
)
from controller.rules.tabs import authorize_posting
from controller.rules.timebands import to_utc
from entrada.errors import EntradaError
from entrada.protocol import EntitlementData, PaymentData, PostingData, RulesData, TimeStopData

ENTITLEMENT_COLUMNS = ("id", "uid", "tariff_id", "concession", "valid_from", "valid_to")
#: Usage counters a device reports; rewriting an entitlement keeps them.
_USAGE = ("entries_used", "first_used", "days_used")


class RulesDocumentError(EntradaError):
    """A rules document is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{where}{len(self.errors)} rules error(s):\n{lines}")


class TabRefused(EntradaError):
    """The rules engine refused a posting; ``code`` is its stable reason code (e.g.
    ``denied.tab_limit``) and ``explanation`` what a screen renders."""

    def __init__(self, code: str, explanation: Explanation) -> None:
        self.code = code
        self.explanation = explanation
        super().__init__(f"posting refused [{code}]")


def new_ref() -> str:
    """A fresh reference for a posting, payment, time stop or entitlement."""
    return "cli:" + uuid.uuid4().hex


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


# ------------------------------------------------------------------------ rules


def _plain(value: Any, where: str, errors: list[str]) -> Any:
    """TOML values as the JSON a device receives: dates ``YYYY-MM-DD``, times ``HH:MM``."""
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}" if where else k, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]", errors) for i, v in enumerate(value)]
    if isinstance(value, datetime):
        errors.append(f"{where}: a date-time is not allowed here; write a date or 'HH:MM'")
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, clock_time):
        if value.second or value.microsecond or value.tzinfo is not None:
            errors.append(f"{where}: times are 'HH:MM' (site-local), got {value.isoformat()}")
            return None
        return value.strftime("%H:%M")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_rules(file: str | Path) -> dict[str, Any]:
    """A rules document from a ``.toml`` file (TOML) or any other (JSON), as plain JSON
    values. RulesDocumentError if it cannot be read or parsed."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise RulesDocumentError([f"cannot read: {err}"], str(path)) from err
    try:
        if path.suffix.lower() == ".toml":
            doc: Any = tomllib.loads(text)
        else:
            doc = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:  # TOMLDecodeError is a ValueError
        raise RulesDocumentError([f"not valid {path.suffix or 'JSON'}: {err}"], str(path)) from err
    if not isinstance(doc, dict):
        raise RulesDocumentError(["the document must be an object (a table)"], str(path))
    errors: list[str] = []
    doc = _plain(doc, "", errors)
    if errors:
        raise RulesDocumentError(errors, str(path))
    return doc


def check_rules(document: Mapping[str, Any], version: int, source: str = "") -> Site:
    """The :class:`Site` a device will build from ``document`` published at ``version``;
    RulesDocumentError lists every problem."""
    if "version" in document:
        raise RulesDocumentError(
            ["version: set by central when it publishes the rules (remove it)"], source
        )
    try:
        return parse_catalog({"version": version, **document})
    except CatalogError as err:
        raise RulesDocumentError(err.errors, source) from err


def publish_rules(
    db_path: str | Path,
    document: str | Path | Mapping[str, Any],
    *,
    now: float | None = None,
) -> int:
    """Check a rules document (a file, or the document itself) and publish it as the
    site's rules; returns the catalog head (unchanged if the rules already say this)."""
    source = str(document) if isinstance(document, str | Path) else "rules"
    doc = read_rules(document) if isinstance(document, str | Path) else dict(document)
    with SqliteStorage(db_path) as store:
        check_rules(doc, store.catalog_head() + 1, source)
        return store.catalog_apply([("rules", "site", RulesData(document=doc))], _clock(now))


def current_site(store: Storage) -> Site:
    """The rules in force now, built as a device builds them."""
    found = store.rules_document()
    if found is None:
        raise EntradaError("no rules published yet: run `entrada catalog rules FILE` first")
    version, document = found
    try:
        return parse_catalog({"version": version, **document})
    except CatalogError as err:
        raise EntradaError(f"the published rules (version {version}) are invalid: {err}") from err


# ----------------------------------------------------------------- entitlements


def _entitlement(fields: Mapping[str, Any], tariffs: Mapping[str, object]) -> EntitlementData:
    """Checked entitlement data, or ValueError listing what is wrong with it."""
    try:
        data = EntitlementData.model_validate(
            {k: v for k, v in fields.items() if v not in (None, "")}
        )
    except ValidationError as err:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        ) from err
    problems = []
    if data.tariff_id not in tariffs:
        known = ", ".join(sorted(tariffs)) or "none"
        problems.append(f"tariff {data.tariff_id!r} is not in the current rules (known: {known})")
    if data.valid_from and data.valid_to and data.valid_from > data.valid_to:
        problems.append(f"valid_from {data.valid_from} is after valid_to {data.valid_to}")
    if problems:
        raise ValueError("; ".join(problems))
    return data


def _keep_usage(store: Storage, key: str, data: EntitlementData) -> EntitlementData:
    current = store.catalog_row("entitlement", key)
    if isinstance(current, EntitlementData):
        return data.model_copy(update={f: getattr(current, f) for f in _USAGE})
    return data


def _check_id(value: str) -> str:
    try:
        EntitlementData.model_validate({"uid": "00000000", "tariff_id": value})
    except ValidationError as err:
        raise ValueError(f"id {value!r} is not a catalog id (letters, digits, _.:-)") from err
    return value


def entitle(
    db_path: str | Path,
    uid: str,
    tariff_id: str,
    *,
    entitlement_id: str | None = None,
    concession: str = "adult",
    valid_from: str | None = None,
    valid_to: str | None = None,
    now: float | None = None,
) -> tuple[str, int]:
    """Give wristband ``uid`` an entitlement of ``tariff_id`` (dates ``YYYY-MM-DD``,
    site-local, inclusive); returns ``(entitlement id, catalog head)``."""
    key = entitlement_id or new_ref()
    fields = {
        "uid": normalise_uid(uid),
        "tariff_id": tariff_id,
        "concession": concession,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }
    with SqliteStorage(db_path) as store:
        tariffs = current_site(store).tariffs
        try:
            data = _entitlement(fields, tariffs)
            _check_id(key)
        except ValueError as err:
            raise CatalogInputError([str(err)], "entitlement", "entitlement(s)") from err
        data = _keep_usage(store, key, data)
        return key, store.catalog_apply([("entitlement", key, data)], _clock(now))


def import_entitlements_csv(
    db_path: str | Path, file: str | Path | TextIO, *, now: float | None = None
) -> int:
    """Import entitlements from a CSV (header naming ``id,uid,tariff_id`` and optionally
    ``concession,valid_from,valid_to``) in one transaction; returns the catalog head.
    CatalogInputError lists every bad line and nothing is written."""
    what = "entitlement row(s)"
    csv_file = read_csv(file, ENTITLEMENT_COLUMNS, ("id", "uid", "tariff_id"), what)
    errors = list(csv_file.errors)
    rows: list[tuple[str, EntitlementData]] = []
    first_line: dict[str, int] = {}
    with SqliteStorage(db_path) as store:
        tariffs = current_site(store).tariffs
        for line, record in csv_file.records:
            key = record.get("id", "")
            try:
                _check_id(key)
                fields = {c: record.get(c, "") for c in ENTITLEMENT_COLUMNS[1:]}
                data = _entitlement(fields | {"uid": normalise_uid(fields["uid"])}, tariffs)
            except ValueError as err:
                errors.append((line, f"line {line}: {err}"))
                continue
            if key in first_line:
                errors.append((line, f"line {line}: id {key} already on line {first_line[key]}"))
                continue
            first_line[key] = line
            rows.append((key, data))
        if errors:
            raise CatalogInputError([e for _, e in sorted(errors)], csv_file.source, what)
        changes: list[tuple[str, str, BaseModel | None]] = [
            ("entitlement", key, _keep_usage(store, key, data)) for key, data in rows
        ]
        return store.catalog_apply(changes, _clock(now))


# ------------------------------------------------------------------------- tab


@dataclass(frozen=True)
class TabEntry:
    """What a tab command wrote (or found already written under the same ``ref``)."""

    ref: str
    head: int
    duplicate: bool = False
    owed_minor: int = 0


def open_tab(store: Storage, uid: str, limit_minor: int | None) -> Tab:
    """The open tab of ``uid`` as a gate sees it: postings, inner exits' charges and
    payments since its last settled exit (``controller.rules.assemble.tab_of``)."""
    from central.history import wristband_record
    from central.sqlite_store import SqliteStorage

    assert isinstance(store, SqliteStorage)  # the history reads SQLite directly
    tab = tab_of(wristband_record(store, uid))
    return Tab(tab.postings, tab.paid_minor, limit_minor)


def _owed(tab: Tab) -> int:
    return tab.posted_minor - tab.paid_minor


def _same_ref(store: Storage, entity: str, ref: str, data: BaseModel) -> bool:
    """True if ``ref`` already holds this entry (a retry); CatalogInputError if it holds
    another one. ``ts`` and ``at`` are not compared: a retry happens later."""
    current = store.catalog_row(entity, ref)
    if current is None:
        return False
    ignore = {"ts", "at"}
    if current.model_dump(exclude=ignore) == data.model_dump(exclude=ignore):
        return True
    raise CatalogInputError([f"ref {ref!r} is already a different {entity}"], entity, "entry")


def _amount(amount_minor: int, what: str) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise CatalogInputError(
            [f"amount {amount_minor!r} must be a positive whole number of minor units"],
            what,
            "entry",
        )


def _validated(model: type[BaseModel], what: str, **fields: Any) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise CatalogInputError(
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()], what, "entry"
        ) from err


def post_to_tab(
    db_path: str | Path,
    uid: str,
    amount_minor: int,
    *,
    ref: str | None = None,
    description: str = "",
    now: float | None = None,
) -> TabEntry:
    """Post a charge to the wristband's open tab if the rules allow it (TabRefused with
    the engine's code if not: ``denied.unknown``, ``denied.blocked``, ...,
    ``denied.low_assurance``, ``denied.tab_limit``)."""
    _amount(amount_minor, "posting")
    at = _clock(now)
    ref = ref or new_ref()
    uid = normalise_uid(uid)
    data = _validated(
        PostingData, "posting", uid=uid, amount_minor=amount_minor, description=description, ts=at
    )
    with SqliteStorage(db_path) as store:
        site = current_site(store)
        band = store.wristband(uid)
        tab = open_tab(store, uid, band.tab_limit_minor if band is not None else None)
        if _same_ref(store, "posting", ref, data):
            return TabEntry(ref, store.catalog_head(), duplicate=True, owed_minor=_owed(tab))
        credential = (
            Credential(
                band.uid,
                status=MediaStatus(band.status),
                assurance=Assurance(band.assurance),
                valid_until=to_utc(band.valid_until) if band.valid_until is not None else None,
                deposit_minor=band.deposit_minor,
            )
            if band is not None
            else None
        )
        decision = authorize_posting(
            credential, Entitlements(tab=tab), amount_minor, site, at, ref=ref
        )
        if not decision.allowed:
            raise TabRefused(str(decision.code), decision.explanation)
        head = store.catalog_apply([("posting", ref, data)], at)
        return TabEntry(ref, head, owed_minor=_owed(tab) + amount_minor)


def _known(store: Storage, uid: str, what: str) -> None:
    if store.wristband(uid) is None:
        raise CatalogInputError([f"wristband {uid} is not in the catalog"], what, "entry")


def pay_tab(
    db_path: str | Path,
    uid: str,
    amount_minor: int,
    *,
    ref: str | None = None,
    method: str = "",
    now: float | None = None,
) -> TabEntry:
    """Record a payment towards the wristband's visit."""
    _amount(amount_minor, "payment")
    at = _clock(now)
    ref = ref or new_ref()
    uid = normalise_uid(uid)
    data = _validated(
        PaymentData, "payment", uid=uid, amount_minor=amount_minor, method=method, ts=at
    )
    with SqliteStorage(db_path) as store:
        _known(store, uid, "payment")
        if _same_ref(store, "payment", ref, data):
            head, duplicate = store.catalog_head(), True
        else:
            head, duplicate = store.catalog_apply([("payment", ref, data)], at), False
        return TabEntry(ref, head, duplicate, _owed(open_tab(store, uid, None)))


def stop_time(
    db_path: str | Path,
    uid: str,
    *,
    at: float | None = None,
    ref: str | None = None,
    now: float | None = None,
) -> TabEntry:
    """Record a kiosk tap at ``at`` (default now) that stops the wristband's stay clock."""
    written = _clock(now)
    ref = ref or new_ref()
    uid = normalise_uid(uid)
    data = _validated(TimeStopData, "timestop", uid=uid, at=written if at is None else at)
    with SqliteStorage(db_path) as store:
        _known(store, uid, "timestop")
        if _same_ref(store, "timestop", ref, data):
            return TabEntry(ref, store.catalog_head(), duplicate=True)
        return TabEntry(ref, store.catalog_apply([("timestop", ref, data)], written))
