"""The engine's inputs: frozen values, checked when built.

Instants are aware datetimes, kept in UTC (converted on construction, so a duration is
real elapsed time). Calendar dates (a pass's validity, the days of choice used) are the
site's local dates. Money is integer minor units in the site's currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from controller.rules.errors import RulesInputError
from controller.rules.money import check_currency, check_minor
from controller.rules.timebands import Rate, Window, to_utc
from controller.rules.zones import ZoneTree


class Concession(StrEnum):
    ADULT = "adult"
    CHILD = "child"
    SENIOR = "senior"
    STUDENT = "student"
    DISABLED = "disabled"


class MediaStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    LOST = "lost"
    EXPIRED = "expired"


class Assurance(StrEnum):
    """How hard the medium is to clone. UID-only media never carry a tab (credit)."""

    SECURE = "secure"
    UID_ONLY = "uid_only"


class Direction(StrEnum):
    IN = "in"  # towards an inner zone
    OUT = "out"  # towards an outer zone or the outside


class OfflineMode(StrEnum):
    ADMIT = "admit"
    DENY = "deny"


def _utc_field(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if value is not None:
        object.__setattr__(obj, name, to_utc(value, name))


def _non_negative(value: int | None, what: str) -> None:
    if value is not None and check_minor(value, what) < 0:
        raise RulesInputError(f"{what} must not be negative, got {value}")


# ------------------------------------------------------------------------------ the medium


@dataclass(frozen=True)
class Credential:
    """A wristband (or card) as the catalog knows it."""

    uid: str
    status: MediaStatus = MediaStatus.ACTIVE
    assurance: Assurance = Assurance.SECURE
    valid_until: datetime | None = None
    deposit_minor: int = 0  # deposit held for the medium, site currency

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", MediaStatus(self.status))
        object.__setattr__(self, "assurance", Assurance(self.assurance))
        _utc_field(self, "valid_until")
        _non_negative(self.deposit_minor, "deposit_minor")


# --------------------------------------------------------------------------- entitlements


@dataclass(frozen=True)
class Entitlement:
    """One product held by a credential (a ticket, a pass) and its usage so far.

    The usage counters are the catalog's; a granted decision says in ``Decision.usage``
    how to advance them, and the gate records that with the passage.
    """

    id: str
    tariff_id: str
    concession: Concession = Concession.ADULT
    valid_from: date | None = None  # site-local dates, inclusive
    valid_to: date | None = None
    entries_used: int = 0
    first_used: date | None = None  # starts the "D days from first use" window
    days_used: frozenset[date] = frozenset()  # days of choice already taken

    def __post_init__(self) -> None:
        object.__setattr__(self, "concession", Concession(self.concession))
        object.__setattr__(self, "days_used", frozenset(self.days_used))
        _non_negative(self.entries_used, "entries_used")


@dataclass(frozen=True)
class Posting:
    """A charge a point of sale posted to the open tab."""

    ref: str
    amount_minor: int
    description: str = ""

    def __post_init__(self) -> None:
        _non_negative(self.amount_minor, "posting amount_minor")


@dataclass(frozen=True)
class Tab:
    """The visit's open account: postings, and what was paid (at a kiosk) so far.

    ``paid_minor`` covers everything owed at the final exit: postings, overtime, stays.
    """

    postings: tuple[Posting, ...] = ()
    paid_minor: int = 0
    limit_minor: int | None = None  # most a tab may owe; None = no limit

    def __post_init__(self) -> None:
        _non_negative(self.paid_minor, "paid_minor")
        _non_negative(self.limit_minor, "limit_minor")

    @property
    def posted_minor(self) -> int:
        return sum(p.amount_minor for p in self.postings)


@dataclass(frozen=True)
class Entitlements:
    items: tuple[Entitlement, ...] = ()
    tab: Tab = field(default_factory=Tab)

    def find(self, entitlement_id: str | None) -> Entitlement | None:
        return next((e for e in self.items if e.id == entitlement_id), None)


# -------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Passage:
    """A passage this credential made (only passages that happened, never denials).

    ``consumed`` marks the passage that started a use of the entitlement (it counted an
    entry); moving on inside zones the entitlement already covers does not.
    """

    at: datetime
    zone_from: str | None
    zone_to: str | None
    direction: Direction
    entitlement_id: str | None = None
    tariff_id: str | None = None
    consumed: bool = False
    offline: bool = False
    gate_id: str = ""

    def __post_init__(self) -> None:
        _utc_field(self, "at")
        object.__setattr__(self, "direction", Direction(self.direction))


@dataclass(frozen=True)
class History:
    """What the gate knows of this credential's past: its passages (from this gate and its
    peers) and the kiosk taps that stopped the stay clock."""

    passages: tuple[Passage, ...] = ()
    time_stops: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "passages", tuple(sorted(self.passages, key=lambda p: p.at)))
        object.__setattr__(
            self, "time_stops", tuple(sorted(to_utc(t, "time_stops") for t in self.time_stops))
        )


@dataclass(frozen=True)
class Presence:
    """People inside each zone now (inner zones included), from this gate and its peers."""

    occupancy: Mapping[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------ the place, rules


@dataclass(frozen=True)
class Gate:
    id: str
    zone_from: str | None  # None: the outside
    zone_to: str | None
    direction: Direction
    collects_media: bool = False  # a collector swallows the wristband (and its deposit)

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction(self.direction))


@dataclass(frozen=True)
class StayRule:
    """Billing of the time spent in one zone: per started interval after the included time.

    Nothing is charged while the time beyond ``included_minutes`` is within
    ``grace_minutes``; past it, every started ``interval_minutes`` from the end of the
    included time costs ``rate`` (banded by the interval's local start). The charges of
    one stay are capped at ``daily_cap_minor`` per local day.
    """

    rate: Rate
    included_minutes: int = 0
    interval_minutes: int = 15
    grace_minutes: int = 0
    daily_cap_minor: int | None = None

    def __post_init__(self) -> None:
        _non_negative(self.included_minutes, "included_minutes")
        _non_negative(self.grace_minutes, "grace_minutes")
        _non_negative(self.daily_cap_minor, "daily_cap_minor")
        if check_minor(self.interval_minutes, "interval_minutes") < 1:
            raise RulesInputError("interval_minutes must be at least 1")


@dataclass(frozen=True)
class OfflinePolicy:
    """What a gate does after ``after_minutes`` without central: admit (at most ``budget``
    entries per wristband while offline, ``None`` = no limit) or deny."""

    after_minutes: int = 0
    mode: OfflineMode = OfflineMode.ADMIT
    budget: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", OfflineMode(self.mode))
        _non_negative(self.after_minutes, "after_minutes")
        _non_negative(self.budget, "budget")


@dataclass(frozen=True)
class Tariff:
    """A product's rules. ``zones`` are the zones it admits to (listed one by one)."""

    id: str
    zones: frozenset[str]
    name: str = ""
    price: Rate | None = None  # entry price: sold at a kiosk, or charged at exit
    pay_at_exit: bool = False  # the entry price is charged at exit (needs a secure medium)
    entries: int | None = None  # N entries; a single entry is 1; None = unlimited
    valid_days: int | None = None  # valid D local days from the first use
    days_of_choice: int | None = None  # K distinct local days, any the holder picks
    daily_allowance_minutes: int | None = None  # time per local day
    min_gap_minutes: int | None = None  # between two entries
    entry_windows: tuple[Window, ...] = ()  # when entries are allowed; () = any time
    stay: Mapping[str, StayRule] = field(default_factory=dict)  # zone -> its time billing
    time_stop_minutes: int = 0  # a kiosk tap freezes the stay clock this long
    offline: OfflinePolicy = field(default_factory=OfflinePolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", frozenset(self.zones))
        for what in ("entries", "valid_days", "days_of_choice", "daily_allowance_minutes"):
            value = getattr(self, what)
            if value is not None and check_minor(value, what) < 1:
                raise RulesInputError(f"tariff {self.id!r}: {what} must be at least 1")
        _non_negative(self.min_gap_minutes, "min_gap_minutes")
        _non_negative(self.time_stop_minutes, "time_stop_minutes")


@dataclass(frozen=True)
class Site:
    """The published rules of one site: its clock, money, zones and tariffs."""

    id: str
    tz: ZoneInfo
    currency: str
    zones: ZoneTree
    tariffs: Mapping[str, Tariff] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    passback_minutes: int = 0  # 0 disables anti-passback
    catalog_version: int = 0

    def __post_init__(self) -> None:
        check_currency(self.currency)
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        _non_negative(self.passback_minutes, "passback_minutes")
        for key, tariff in self.tariffs.items():
            if key != tariff.id:
                raise RulesInputError(f"tariff {tariff.id!r} is filed under {key!r}")
            for zone in (*tariff.zones, *tariff.stay):
                if zone not in self.zones.zones:
                    raise RulesInputError(f"tariff {tariff.id!r} names unknown zone {zone!r}")
