"""The dispenser's pure decisions: the business day at a time, which blocks to lease, how a
number and a wait are printed."""

import pytest

from controller.roles.dispenser import (
    DAY_SECONDS,
    DayView,
    format_number,
    leases_wanted,
    next_day,
    wait_minutes,
)
from entrada.protocol_queue import QueueBoard

ENDS = 1_741_640_400.0  # 2025-03-10 21:00 UTC
DAY = DayView("2025-03-10", ENDS)
HOUR = 3600.0


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (ENDS - 12 * HOUR, "2025-03-10"),
        (ENDS - 0.001, "2025-03-10"),
        (ENDS, "2025-03-11"),
        (ENDS + 5 * HOUR, "2025-03-11"),
        (ENDS + DAY_SECONDS - 1, "2025-03-11"),
        (ENDS + DAY_SECONDS, "2025-03-12"),
        (ENDS + 3 * DAY_SECONDS + HOUR, "2025-03-14"),
    ],
)
def test_the_business_day_turns_at_day_ends_at(now, day):
    assert DAY.day_at(now) == day


@pytest.mark.parametrize(
    ("day", "after"),
    [("2025-03-10", "2025-03-11"), ("2024-02-28", "2024-02-29"), ("2025-12-31", "2026-01-01")],
)
def test_next_day_crosses_months_leap_days_and_years(day, after):
    assert next_day(day) == after
    assert DayView(day, ENDS).next_day() == after


def test_a_day_view_comes_from_the_board_and_none_without_one():
    board = QueueBoard(seq=1, ts=0.0, site_name="x", business_day="2025-03-10", day_ends_at=ENDS)
    assert DayView.of(board) == DAY
    assert DayView.of(None) is None


def wanted(left, now, low=20, ahead=6 * HOUR, services=("A", "B")):
    return leases_wanted(list(services), left, DAY, now, low=low, ahead=ahead)


TODAY, TOMORROW = "2025-03-10", "2025-03-11"


@pytest.mark.parametrize(
    ("left", "now", "expected"),
    [
        # nothing leased yet: every service, today
        ({}, ENDS - 12 * HOUR, [("A", TODAY), ("B", TODAY)]),
        # below the low mark only
        ({("A", TODAY): 19, ("B", TODAY): 20}, ENDS - 12 * HOUR, [("A", TODAY)]),
        ({("A", TODAY): 50, ("B", TODAY): 50}, ENDS - 12 * HOUR, []),
        # within lease_ahead of the day's end: tomorrow too
        (
            {("A", TODAY): 50, ("B", TODAY): 50},
            ENDS - 6 * HOUR,
            [("A", TOMORROW), ("B", TOMORROW)],
        ),
        (
            {("A", TODAY): 50, ("B", TODAY): 5, ("A", TOMORROW): 50},
            ENDS - HOUR,
            [("B", TODAY), ("B", TOMORROW)],
        ),
        # past the end: the new day is "today", nothing for the day gone
        ({("A", TOMORROW): 50}, ENDS + HOUR, [("B", TOMORROW)]),
    ],
)
def test_leases_wanted(left, now, expected):
    assert wanted(left, now) == expected


def test_no_lease_ahead_asks_for_tomorrow_only_once_it_is_today():
    left = {("A", TODAY): 50, ("B", TODAY): 50}
    assert wanted(left, ENDS - 1, ahead=0) == []
    assert wanted(left, ENDS, ahead=0) == [("A", TOMORROW), ("B", TOMORROW)]


def test_a_low_mark_of_zero_never_asks():
    assert wanted({}, ENDS - HOUR, low=0) == []


@pytest.mark.parametrize(
    ("prefix", "number", "digits", "text"),
    [
        ("A", 42, 3, "A042"),
        ("A", 1, 3, "A001"),
        ("B", 999, 3, "B999"),
        ("B", 1000, 3, "B1000"),
        ("", 7, 2, "07"),
        ("VIP", 5, 1, "VIP5"),
    ],
)
def test_format_number(prefix, number, digits, text):
    assert format_number(prefix, number, digits) == text


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(None, None), (0, 0), (1, 1), (20, 1), (60, 1), (61, 2), (300, 5), (3599, 60)],
)
def test_wait_minutes_rounds_up(seconds, minutes):
    assert wait_minutes(seconds) == minutes
