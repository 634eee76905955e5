"""The tariff catalog as central publishes it: plain JSON-like dicts -> a :class:`Site`.

Strict: unknown keys are errors (with a "did you mean"), no type coercion ("3" is not 3,
true is not 1), money only as integer minor units. Every problem is reported at once, by
its place in the document: ``tariffs[2].stay.sauna.interval_minutes: ...``.

Times are ``"HH:MM"`` (site-local wall clock), dates ``"YYYY-MM-DD"`` (site-local), days
``mon``..``sun`` and ``hol`` (a date of ``site.holidays``; on one only ``hol`` applies).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from controller.rules.errors import CatalogError, RulesInputError
from controller.rules.model import OfflineMode, OfflinePolicy, Site, StayRule, Tariff
from controller.rules.timebands import Band, Rate, Window
from controller.rules.zones import Zone, ZoneTree

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _parse_time(value: object) -> object:
    if isinstance(value, str):
        match = _HHMM.match(value)
        if not match:
            raise ValueError(f"time must be 'HH:MM' (00:00-23:59), got {value!r}")
        return time(int(match[1]), int(match[2]))
    return value


def _parse_date(value: object) -> object:
    if isinstance(value, str):
        try:
            if not _DATE.match(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"date must be a real 'YYYY-MM-DD', got {value!r}") from err
    return value


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}") from err
    return value


HHMM = Annotated[time, BeforeValidator(_parse_time)]
Day = Annotated[date, BeforeValidator(_parse_date)]
Id = Annotated[str, Field(pattern=_ID)]
Minor = Annotated[int, Field(ge=0)]
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol"]
ConcessionName = Literal["adult", "child", "senior", "student", "disabled"]
Prices = dict[ConcessionName, Minor]
_EVERY_DAY: tuple[DayName, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol")


def _prices(prices: Prices) -> dict[str, int]:
    return {str(k): v for k, v in prices.items()}


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WindowDoc(_Doc):
    days: list[DayName] = Field(default_factory=lambda: list(_EVERY_DAY), min_length=1)
    start: HHMM = time(0)
    end: HHMM = time(0)

    def build(self) -> Window:
        return Window(frozenset(self.days), self.start, self.end)


class BandDoc(WindowDoc):
    prices: Prices = Field(min_length=1)


class RateDoc(_Doc):
    prices: Prices
    bands: list[BandDoc] = Field(default_factory=list)

    def build(self) -> Rate:
        bands = tuple(Band(b.build(), _prices(b.prices)) for b in self.bands)
        return Rate(_prices(self.prices), bands)


class StayDoc(_Doc):
    rate: RateDoc
    included_minutes: Minor = 0
    interval_minutes: int = Field(15, ge=1, le=24 * 60)
    grace_minutes: Minor = 0
    daily_cap_minor: Minor | None = None

    def build(self) -> StayRule:
        return StayRule(
            self.rate.build(),
            included_minutes=self.included_minutes,
            interval_minutes=self.interval_minutes,
            grace_minutes=self.grace_minutes,
            daily_cap_minor=self.daily_cap_minor,
        )


class OfflineDoc(_Doc):
    after_minutes: Minor = 0
    mode: Literal["admit", "deny"] = "admit"
    budget: Minor | None = None


class TariffDoc(_Doc):
    id: Id
    name: str = Field("", max_length=200)
    zones: list[Id] = Field(min_length=1)
    price: RateDoc | None = None
    pay_at_exit: bool = False
    entries: int | None = Field(None, ge=1)
    valid_days: int | None = Field(None, ge=1, le=3660)
    days_of_choice: int | None = Field(None, ge=1, le=3660)
    daily_allowance_minutes: int | None = Field(None, ge=1, le=24 * 60)
    min_gap_minutes: Minor | None = None
    entry_windows: list[WindowDoc] = Field(default_factory=list)
    stay: dict[Id, StayDoc] = Field(default_factory=dict)
    time_stop_minutes: Minor = 0
    offline: OfflineDoc = Field(default_factory=OfflineDoc)

    def build(self) -> Tariff:
        return Tariff(
            self.id,
            frozenset(self.zones),
            name=self.name,
            price=self.price.build() if self.price is not None else None,
            pay_at_exit=self.pay_at_exit,
            entries=self.entries,
            valid_days=self.valid_days,
            days_of_choice=self.days_of_choice,
            daily_allowance_minutes=self.daily_allowance_minutes,
            min_gap_minutes=self.min_gap_minutes,
            entry_windows=tuple(w.build() for w in self.entry_windows),
            stay={zone: rule.build() for zone, rule in self.stay.items()},
            time_stop_minutes=self.time_stop_minutes,
            offline=OfflinePolicy(
                self.offline.after_minutes, OfflineMode(self.offline.mode), self.offline.budget
            ),
        )


class ZoneDoc(_Doc):
    id: Id
    parent: Id | None = None
    capacity: Minor | None = None
    name: str = Field("", max_length=200)


class SiteDoc(_Doc):
    id: Id
    tz: Annotated[str, BeforeValidator(lambda v: _check_tz(v) if isinstance(v, str) else v)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    holidays: list[Day] = Field(default_factory=list)
    passback_minutes: Minor = 0


class CatalogDoc(_Doc):
    version: Minor
    site: SiteDoc
    zones: list[ZoneDoc] = Field(min_length=1)
    tariffs: list[TariffDoc] = Field(default_factory=list)


_MODELS: tuple[type[BaseModel], ...] = (
    WindowDoc,
    BandDoc,
    RateDoc,
    StayDoc,
    OfflineDoc,
    TariffDoc,
    ZoneDoc,
    SiteDoc,
    CatalogDoc,
)
_FIELDS = sorted({name for model in _MODELS for name in model.model_fields})


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _pydantic_errors(err: ValidationError) -> list[str]:
    errors = []
    for e in err.errors(include_url=False):
        where = _where(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"{where}: unknown key{hint}")
        else:
            errors.append(f"{where}: {e['msg']}")
    return errors


def _cross_check(doc: CatalogDoc) -> list[str]:
    """What the schema alone cannot see: references, duplicates, cycles, adult prices."""
    errors: list[str] = []
    zone_ids = [z.id for z in doc.zones]
    known = set(zone_ids)
    for i, z in enumerate(doc.zones):
        if zone_ids.index(z.id) != i:
            errors.append(f"zones[{i}].id: duplicate zone {z.id!r}")
        if z.parent is not None and z.parent not in known:
            errors.append(f"zones[{i}].parent: unknown zone {z.parent!r}")
    parents = {z.id: z.parent for z in doc.zones}
    for i, z in enumerate(doc.zones):
        seen, current = {z.id}, z.parent
        while current is not None and current in parents:
            if current in seen:
                errors.append(f"zones[{i}].parent: zone {z.id!r} is inside itself")
                break
            seen.add(current)
            current = parents[current]
    tariff_ids = [t.id for t in doc.tariffs]
    for i, t in enumerate(doc.tariffs):
        where = f"tariffs[{i}]"
        if tariff_ids.index(t.id) != i:
            errors.append(f"{where}.id: duplicate tariff {t.id!r}")
        for zone in t.zones:
            if zone not in known:
                errors.append(f"{where}.zones: unknown zone {zone!r}")
        for zone in t.stay:
            if zone not in t.zones:
                errors.append(f"{where}.stay.{zone}: the tariff does not admit to {zone!r}")
        rates = [(f"{where}.price", t.price)] if t.price is not None else []
        rates += [(f"{where}.stay.{z}.rate", s.rate) for z, s in t.stay.items()]
        for place, rate in rates:
            if rate is not None and "adult" not in rate.prices:
                errors.append(f"{place}.prices: an 'adult' price is required (the fallback)")
        if t.pay_at_exit and t.price is None:
            errors.append(f"{where}.price: a pay_at_exit tariff needs a price")
    return errors


def parse_catalog(doc: Mapping[str, Any]) -> Site:
    """Validate a published catalog document and build the engine's :class:`Site`.

    Raises :class:`CatalogError` listing every problem found.
    """
    try:
        parsed = CatalogDoc.model_validate(doc)
    except ValidationError as err:
        raise CatalogError(_pydantic_errors(err)) from err
    errors = _cross_check(parsed)
    if errors:
        raise CatalogError(errors)
    site = parsed.site
    try:
        return Site(
            site.id,
            ZoneInfo(site.tz),
            site.currency,
            ZoneTree.of(*(Zone(z.id, z.parent, z.capacity, z.name) for z in parsed.zones)),
            tariffs={t.id: t.build() for t in parsed.tariffs},
            holidays=frozenset(site.holidays),
            passback_minutes=site.passback_minutes,
            catalog_version=parsed.version,
        )
    except RulesInputError as err:  # a rule the schema missed: still one clear error
        raise CatalogError([str(err)]) from err
