"""Business days: the local date of (local time minus the boundary), across DST changes
and at evening UTC offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.queue.businessday import (
    BusinessDayError,
    business_day,
    day_start,
    local_hour,
    parse_boundary,
)


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


WARSAW = "Europe/Warsaw"
NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("tz", "boundary", "at_utc", "local", "expected"),
    [
        # spring forward in Warsaw: 02:00 CET -> 03:00 CEST on 2026-03-29
        (WARSAW, "04:00", "2026-03-29 00:30", "01:30 CET", date(2026, 3, 28)),
        (WARSAW, "04:00", "2026-03-29 01:59", "03:59 CEST", date(2026, 3, 28)),
        (WARSAW, "04:00", "2026-03-29 02:00", "04:00 CEST", date(2026, 3, 29)),
        (WARSAW, "04:00", "2026-03-29 21:59", "23:59 CEST", date(2026, 3, 29)),
        (WARSAW, "04:00", "2026-03-30 01:59", "03:59 CEST", date(2026, 3, 29)),
        # fall back in Warsaw: 03:00 CEST -> 02:00 CET on 2026-10-25 (02:xx happens twice)
        (WARSAW, "04:00", "2026-10-25 00:30", "02:30 CEST", date(2026, 10, 24)),
        (WARSAW, "04:00", "2026-10-25 01:30", "02:30 CET", date(2026, 10, 24)),
        (WARSAW, "04:00", "2026-10-25 02:59", "03:59 CET", date(2026, 10, 24)),
        (WARSAW, "04:00", "2026-10-25 03:00", "04:00 CET", date(2026, 10, 25)),
        # a ticket at 02:30 with the boundary at 04:00 belongs to the day before
        (WARSAW, "04:00", "2026-03-10 01:30", "02:30 CET", date(2026, 3, 9)),
        (WARSAW, "00:00", "2026-03-10 01:30", "02:30 CET", date(2026, 3, 10)),
        # evening in New York: UTC is already on the next date, the business day is not
        (NEW_YORK, "04:00", "2026-03-11 03:30", "23:30 EDT", date(2026, 3, 10)),
        (NEW_YORK, "00:00", "2026-03-11 03:30", "23:30 EDT", date(2026, 3, 10)),
        (NEW_YORK, "00:00", "2026-03-11 04:30", "00:30 EDT", date(2026, 3, 11)),
        (NEW_YORK, "04:00", "2026-03-11 04:30", "00:30 EDT", date(2026, 3, 10)),
        (NEW_YORK, "04:00", "2026-01-15 04:59", "23:59 EST", date(2026, 1, 14)),
        # a boundary the clocks skip: "02:30" on the spring-forward day starts at 03:30 CEST
        (WARSAW, "02:30", "2026-03-29 01:10", "03:10 CEST", date(2026, 3, 28)),
        (WARSAW, "02:30", "2026-03-29 01:30", "03:30 CEST", date(2026, 3, 29)),
        # a boundary the clocks repeat: the day starts at its first occurrence, for good
        (WARSAW, "02:30", "2026-10-25 00:30", "02:30 CEST", date(2026, 10, 25)),
        (WARSAW, "02:30", "2026-10-25 01:10", "02:10 CET", date(2026, 10, 25)),
    ],
)
def test_business_day(tz: str, boundary: str, at_utc: str, local: str, expected: date) -> None:
    ts = utc(at_utc)
    assert local.startswith(f"{local_hour(ts, tz):02d}:")
    assert business_day(ts, tz, boundary) == expected


@pytest.mark.parametrize(
    ("day", "boundary", "start_utc"),
    [
        (date(2026, 3, 29), "04:00", "2026-03-29 02:00"),  # CEST already
        (date(2026, 3, 28), "04:00", "2026-03-28 03:00"),  # CET
        (date(2026, 10, 25), "04:00", "2026-10-25 03:00"),  # CET again
        (date(2026, 10, 25), "00:00", "2026-10-24 22:00"),  # CEST at midnight
    ],
)
def test_day_start(day: date, boundary: str, start_utc: str) -> None:
    assert day_start(day, WARSAW, boundary) == utc(start_utc)


@given(
    tz=st.sampled_from([WARSAW, NEW_YORK, "UTC", "Australia/Lord_Howe", "Asia/Kolkata"]),
    boundary=st.sampled_from(["00:00", "02:30", "03:00", "04:00", "23:30"]),
    ts=st.integers(
        int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()),
        int(datetime(2026, 11, 30, tzinfo=UTC).timestamp()),
    ),
    step=st.integers(1, 6 * 3600),
)
@settings(max_examples=200, deadline=None)
def test_business_days_never_go_back_and_agree_with_day_start(
    tz: str, boundary: str, ts: int, step: int
) -> None:
    day = business_day(ts, tz, boundary)
    assert day_start(day, tz, boundary) <= ts < day_start(day + timedelta(days=1), tz, boundary)
    assert business_day(ts + step, tz, boundary) >= day


@pytest.mark.parametrize("bad", ["4:00", "24:00", "04:60", "0400", ""])
def test_bad_boundary(bad: str) -> None:
    with pytest.raises(BusinessDayError):
        parse_boundary(bad)


def test_unknown_zone() -> None:
    with pytest.raises(BusinessDayError):
        business_day(0.0, "Mars/Olympus", "04:00")
