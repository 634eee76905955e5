"""Local time for rules: instants, site days, weekday/holiday windows and price bands.

An instant is an aware datetime kept in UTC, so durations are real elapsed time (a 2 h
stay across the autumn change is 2 h, not 3 wall-clock hours). Rules are written in the
site's wall-clock time: a window "mon-fri 06:00-17:00" or a band "sat,sun,hol 10:00-22:00"
is matched against the instant converted to the site's zone, so midnight crossing and
daylight-saving changes need no special cases.

A day is typed by its weekday (``mon``..``sun``) or, on a date of the site's holiday
calendar, by ``hol`` instead: on a holiday only windows and bands that list ``hol`` apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from controller.rules.errors import RulesInputError
from controller.rules.money import check_minor

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY = "hol"
DAY_TYPES = frozenset((*WEEKDAYS, HOLIDAY))
ALL_DAYS = frozenset(WEEKDAYS) | {HOLIDAY}


def to_utc(at: datetime | float | int, what: str = "now") -> datetime:
    """An aware datetime or a Unix time, as an aware UTC datetime. Naive is refused."""
    if isinstance(at, bool):
        raise RulesInputError(f"{what} must be an aware datetime or a Unix time, got a bool")
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise RulesInputError(f"{what} must be timezone-aware, got naive {at.isoformat()}")
        return at.astimezone(UTC)
    if isinstance(at, int | float):
        return datetime.fromtimestamp(at, UTC)
    raise RulesInputError(f"{what} must be an aware datetime or a Unix time, got {at!r}")


def day_type(day: date, holidays: frozenset[date]) -> str:
    """``hol`` on a holiday, else the weekday's short name."""
    return HOLIDAY if day in holidays else WEEKDAYS[day.weekday()]


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) the local ``day`` begins in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of the local ``day`` as UTC instants (23 h or 25 h on DST days)."""
    return day_start(day, tz), day_start(day + timedelta(days=1), tz)


def hhmm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def local_hhmm(at: datetime, tz: ZoneInfo) -> str:
    """Wall-clock ``HH:MM`` of an instant in the site's zone (for explanations)."""
    return hhmm(at.astimezone(tz).time())


def overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> timedelta:
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return max(end - start, timedelta(0))


@dataclass(frozen=True)
class Window:
    """Wall-clock ``[start, end)`` on the listed day types.

    ``end <= start`` runs past midnight into the next day and belongs to the day it starts
    on ("fri 22:00-02:00" matches Friday 23:00 and Saturday 01:00, not Saturday 23:00);
    ``start == end`` is 24 hours from ``start``.
    """

    days: frozenset[str] = ALL_DAYS
    start: time = time(0)
    end: time = time(0)

    def __post_init__(self) -> None:
        unknown = set(self.days) - DAY_TYPES
        if unknown or not self.days:
            raise RulesInputError(f"window days must be among {sorted(DAY_TYPES)}: {self.days}")
        for t in (self.start, self.end):
            if t.tzinfo is not None or t.second or t.microsecond:
                raise RulesInputError(f"window times are naive HH:MM, got {t!r}")

    @property
    def wraps(self) -> bool:
        return self.end <= self.start

    def contains(self, local: datetime, holidays: frozenset[date]) -> bool:
        """Whether the site-local datetime ``local`` falls in the window."""
        today, now = local.date(), local.time().replace(tzinfo=None, fold=0)
        if not self.wraps:
            return day_type(today, holidays) in self.days and self.start <= now < self.end
        yesterday = today - timedelta(days=1)
        return (day_type(today, holidays) in self.days and now >= self.start) or (
            day_type(yesterday, holidays) in self.days and now < self.end
        )


def in_any(windows: Iterable[Window], local: datetime, holidays: frozenset[date]) -> bool:
    return any(w.contains(local, holidays) for w in windows)


def window_hint(
    windows: Iterable[Window], local: datetime, holidays: frozenset[date]
) -> tuple[str, str | None]:
    """Why ``local`` is outside every window, for an explanation.

    ``("later", "10:00")``: a window opens later today; ``("ended", "17:00")``: today's
    windows are over (the latest end is given); ``("day", None)``: none applies today.
    """
    today, now = local.date(), local.time().replace(tzinfo=None, fold=0)
    todays = [w for w in windows if day_type(today, holidays) in w.days]
    later = sorted(w.start for w in todays if w.start > now)
    if later:
        return "later", hhmm(later[0])
    ended = [w.end for w in todays if not w.wraps and w.end <= now]
    if ended:
        return "ended", hhmm(max(ended))
    return "day", None


def _check_prices(prices: Mapping[str, int]) -> None:
    for concession, price in prices.items():
        if check_minor(price, f"price of {concession}") < 0:
            raise RulesInputError(f"price of {concession} must not be negative, got {price}")


@dataclass(frozen=True)
class Band:
    """Prices (minor units per concession) that apply inside ``window``."""

    window: Window
    prices: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_prices(self.prices)


@dataclass(frozen=True)
class Rate:
    """A price per concession; the first band whose window contains the moment wins.

    A concession missing from a band falls through to the next band, then to ``prices``;
    missing there too, it pays the ``adult`` price (a catalog always has one).
    """

    prices: Mapping[str, int] = field(default_factory=dict)
    bands: tuple[Band, ...] = ()

    def __post_init__(self) -> None:
        _check_prices(self.prices)
        object.__setattr__(self, "bands", tuple(self.bands))

    def price_minor(self, concession: str, local: datetime, holidays: frozenset[date]) -> int:
        for band in self.bands:
            if concession in band.prices and band.window.contains(local, holidays):
                return band.prices[concession]
        if concession in self.prices:
            return self.prices[concession]
        for band in self.bands:
            if "adult" in band.prices and band.window.contains(local, holidays):
                return band.prices["adult"]
        return self.prices.get("adult", 0)
