"""The business day: which day's numbering a moment belongs to, in the site's time zone.

Ticket numbers restart every business day. A business day does not start at midnight but
at a configured boundary (``day_boundary = "04:00"``), so a late evening and the small
hours after it are one day: the business day of a moment is the *local* date of (local
wall-clock time minus the boundary). A ticket at 02:30 with the boundary at 04:00 belongs
to the previous day; 23:30 in New York is still that day, never "tomorrow" because UTC
has already moved on. Unix times go in; nothing here reads a clock.

Daylight-saving changes need no special case: the local wall time is computed first
(with :mod:`zoneinfo`), then shifted by the boundary as a naive wall-clock duration.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from entrada.errors import EntradaError

BOUNDARY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_BOUNDARY_RE = re.compile(BOUNDARY_PATTERN)


class BusinessDayError(EntradaError):
    """A time zone or a day boundary that cannot be used."""


@lru_cache(maxsize=64)
def zone(tz: str) -> ZoneInfo:
    """The named IANA time zone (cached); BusinessDayError if it does not exist."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise BusinessDayError(f"unknown time zone {tz!r}") from err


@lru_cache(maxsize=64)
def parse_boundary(boundary: str) -> timedelta:
    """``"HH:MM"`` as the offset of the day's start from local midnight."""
    if not _BOUNDARY_RE.match(boundary):
        raise BusinessDayError(f"day boundary must be HH:MM (00:00-23:59), got {boundary!r}")
    hours, minutes = boundary.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


def local_time(ts: float, tz: str) -> datetime:
    """Unix time ``ts`` as an aware datetime in ``tz``."""
    return datetime.fromtimestamp(ts, UTC).astimezone(zone(tz))


def business_day(ts: float, tz: str, boundary: str) -> date:
    """The business day (a local date) that the moment ``ts`` belongs to: the latest day
    whose start (:func:`day_start`) is not after ``ts``.

    That is the local date of (local time minus the boundary), except when the boundary
    itself falls in an hour the clocks skip or repeat: then the day starts at the one
    instant :func:`day_start` names, so the business day never goes back as time goes on.
    """
    local = local_time(ts, tz).replace(tzinfo=None)
    day = (local - parse_boundary(boundary)).date()
    if ts < day_start(day, tz, boundary):
        return day - timedelta(days=1)
    if ts >= day_start(day + timedelta(days=1), tz, boundary):
        return day + timedelta(days=1)
    return day


def day_start(day: date, tz: str, boundary: str) -> float:
    """The Unix time at which business ``day`` begins: its boundary, local time.

    A boundary the clocks repeat (autumn) starts the day at its first occurrence; one
    they skip (spring) is read with the offset before the change (zoneinfo's ``fold=0``),
    so "02:30" on the spring-forward day in Warsaw starts the day at 03:30 summer time.
    """
    offset = parse_boundary(boundary)
    naive = datetime.combine(day, time(0)) + offset
    return naive.replace(tzinfo=zone(tz)).astimezone(UTC).timestamp()


def local_hour(ts: float, tz: str) -> int:
    """The site-local hour (0-23) of ``ts``, for hourly load figures."""
    return local_time(ts, tz).hour
