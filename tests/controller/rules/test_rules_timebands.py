from datetime import date, time, timedelta

import pytest
from rules_site import WARSAW, at

from controller.rules.errors import RulesInputError
from controller.rules.timebands import (
    Band,
    Rate,
    Window,
    day_bounds,
    day_type,
    to_utc,
    window_hint,
)

HOLIDAYS = frozenset({date(2028, 5, 3)})
WEEKDAY_DAY = Window(frozenset({"mon", "tue", "wed", "thu", "fri"}), time(6), time(17))
NIGHT = Window(frozenset({"fri", "sat"}), time(22), time(2))


@pytest.mark.parametrize(
    ("window", "when", "inside"),
    [
        (WEEKDAY_DAY, at(2028, 3, 3, 16, 59), True),
        (WEEKDAY_DAY, at(2028, 3, 3, 17, 0), False),  # end is exclusive
        (WEEKDAY_DAY, at(2028, 3, 3, 6, 0), True),
        (WEEKDAY_DAY, at(2028, 3, 4, 10, 0), False),  # Saturday
        (WEEKDAY_DAY, at(2028, 5, 3, 10, 0), False),  # a Wednesday, but a holiday
        (NIGHT, at(2028, 3, 3, 23, 30), True),  # Friday night
        (NIGHT, at(2028, 3, 4, 1, 30), True),  # Saturday early: Friday's window
        (NIGHT, at(2028, 3, 5, 1, 30), True),  # Sunday early: Saturday's window
        (NIGHT, at(2028, 3, 5, 23, 0), False),  # Sunday night
        (NIGHT, at(2028, 3, 6, 1, 0), False),  # Monday early: Sunday is not listed
        (NIGHT, at(2028, 3, 3, 21, 59), False),
        # spring forward, Sun 26 Mar 2028: 01:59 CET is inside, the next minute is 03:00 CEST
        (NIGHT, at(2028, 3, 26, 1, 59), True),
        (NIGHT, at(2028, 3, 26, 3, 0), False),
        # fall back, Sun 29 Oct 2028: 01:30 (CEST) inside; both 02:30s are past 02:00
        (NIGHT, at(2028, 10, 29, 1, 30), True),
        (NIGHT, at(2028, 10, 29, 2, 30, fold=0), False),
        (NIGHT, at(2028, 10, 29, 2, 30, fold=1), False),
        (Window(), at(2028, 2, 29, 12, 0), True),  # every day, all day (leap day too)
    ],
)
def test_window_contains(window, when, inside):
    assert window.contains(to_utc(when).astimezone(WARSAW), HOLIDAYS) is inside


@pytest.mark.parametrize(
    ("when", "hint"),
    [
        (at(2028, 3, 3, 5, 30), ("later", "06:00")),
        (at(2028, 3, 3, 17, 0), ("ended", "17:00")),
        (at(2028, 3, 4, 10, 0), ("day", None)),
    ],
)
def test_window_hint(when, hint):
    assert window_hint([WEEKDAY_DAY], when, HOLIDAYS) == hint


def test_day_types_and_dst_day_lengths():
    assert day_type(date(2028, 2, 29), HOLIDAYS) == "tue"
    assert day_type(date(2028, 5, 3), HOLIDAYS) == "hol"
    lengths = {
        d: (lambda b: b[1] - b[0])(day_bounds(d, WARSAW))
        for d in (date(2028, 3, 26), date(2028, 10, 29), date(2028, 2, 29))
    }
    assert lengths == {
        date(2028, 3, 26): timedelta(hours=23),
        date(2028, 10, 29): timedelta(hours=25),
        date(2028, 2, 29): timedelta(hours=24),
    }


def test_rate_bands_fall_back_per_concession():
    rate = Rate(
        {"adult": 3500, "child": 2000},
        (Band(Window(frozenset({"sat"})), {"adult": 4500}),),
    )
    saturday = at(2028, 3, 4, 10, 0)
    assert rate.price_minor("adult", saturday, HOLIDAYS) == 4500
    assert rate.price_minor("child", saturday, HOLIDAYS) == 2000  # not in the band
    assert rate.price_minor("senior", saturday, HOLIDAYS) == 4500  # unknown: adult, banded
    assert rate.price_minor("senior", at(2028, 3, 3, 10, 0), HOLIDAYS) == 3500


def test_naive_and_odd_instants_are_refused():
    from datetime import datetime

    with pytest.raises(RulesInputError):
        to_utc(datetime(2028, 3, 3, 10, 0))  # noqa: DTZ001 - the point of the test
    with pytest.raises(RulesInputError):
        to_utc(True)
    assert to_utc(1_830_000_000).tzinfo is not None
    with pytest.raises(RulesInputError):
        Window(frozenset({"monday"}))
    with pytest.raises(RulesInputError):
        Rate({"adult": -1})
