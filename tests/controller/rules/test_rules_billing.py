"""Timed entries: 2 h included, then 5.00 PLN (child 3.00) per started 15 min, 7.00 (child
4.00) at weekends and holidays, 5 min grace, capped at 60.00 PLN per local day; a kiosk
tap freezes the clock for 10 min."""

import pytest
from rules_site import EXIT, SITE, at, came_in, ent, tap

from controller.rules.billing import billing_end, intervals_due, stay_lines
from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.explain import render
from controller.rules.model import Concession, Tab

RULE = SITE.tariffs["timed-2h"].stay["facility"]
TIMED = ent("timed-2h", entries_used=1)
CHILD = ent("timed-2h", entries_used=1, concession=Concession.CHILD)


def leave(entered, left, e=TIMED, **kw):
    return tap(EXIT, left, e, passages=(came_in(entered, e),), **kw)


@pytest.mark.parametrize(
    ("entered", "left", "e", "owed"),
    [
        # Friday 3 March 2028
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 0), TIMED, 0),
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 5), TIMED, 0),  # within the grace
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 6), TIMED, 500),  # 1 started interval
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 15), TIMED, 500),
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 16), TIMED, 1000),
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 30), TIMED, 1000),
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 30), CHILD, 600),
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 14, 0), TIMED, 4000),  # 8 intervals
        (at(2028, 3, 3, 10, 0), at(2028, 3, 3, 16, 0), TIMED, 6000),  # 16 x 5.00 capped
        # Wednesday 3 May 2028 is a holiday: the weekend band
        (at(2028, 5, 3, 10, 0), at(2028, 5, 3, 12, 30), TIMED, 1400),
        # spring forward, Sun 26 Mar: 01:00 CET -> 04:30 CEST is 150 real minutes
        (at(2028, 3, 26, 1, 0), at(2028, 3, 26, 4, 30), TIMED, 1400),
        # fall back, Sun 29 Oct: 01:00 CEST -> the second 02:30 (CET) is 150 real minutes
        (at(2028, 10, 29, 1, 0), at(2028, 10, 29, 2, 30, fold=1), TIMED, 1400),
        # ... and the first 02:30 (CEST) is 90 real minutes: nothing owed
        (at(2028, 10, 29, 1, 0), at(2028, 10, 29, 2, 30, fold=0), TIMED, 0),
        # leap day, Tuesday 29 Feb 2028
        (at(2028, 2, 29, 10, 0), at(2028, 2, 29, 12, 30), TIMED, 1000),
    ],
)
def test_overtime(entered, left, e, owed):
    decision = leave(entered, left, e)
    assert decision.due_minor == owed and decision.allowed is (owed == 0)
    assert all(c.code is ChargeCode.OVERTIME for c in decision.charges)


def test_midnight_crossing_prices_each_interval_by_its_own_day():
    # Fri 21:00 -> Sat 00:31: 91 min over, 7 intervals from 23:00:
    # 23:00 23:15 23:30 23:45 on Friday (4 x 5.00), 00:00 00:15 00:30 on Saturday (3 x 7.00)
    decision = leave(at(2028, 3, 3, 21, 0), at(2028, 3, 4, 0, 31))
    lines = [
        (dict(c.params)["day"], dict(c.params)["intervals"], c.amount_minor)
        for c in decision.charges
    ]
    assert lines == [("2028-03-03", 4, 2000), ("2028-03-04", 3, 2100)]
    assert decision.due_minor == 4100
    assert render(decision.explanation) == "Overtime 41.00 PLN due — pay at the kiosk"


def test_the_daily_cap_applies_per_local_day():
    # Fri 18:00 -> Sat 03:00: Friday 20:00-24:00 16 x 5.00 = 80.00 -> 60.00,
    # Saturday 00:00-03:00 12 x 7.00 = 84.00 -> 60.00
    decision = leave(at(2028, 3, 3, 18, 0), at(2028, 3, 4, 3, 0))
    assert [c.amount_minor for c in decision.charges] == [6000, 6000]
    assert all(dict(c.params)["capped"] == 1 for c in decision.charges)


def test_time_stop_freezes_overtime_while_the_visitor_pays():
    entered = at(2028, 3, 3, 10, 0)
    kiosk = at(2028, 3, 3, 12, 30)
    # the kiosk quotes at the tap: 2 intervals, 10.00 PLN
    quote = leave(entered, kiosk, time_stops=(kiosk,))
    assert quote.due_minor == 1000
    paid = Tab(paid_minor=quote.due_minor)
    # within 10 minutes of the tap the clock stays at 12:30: paid in full, the gate opens
    assert leave(entered, at(2028, 3, 3, 12, 38), time_stops=(kiosk,), tab=paid).allowed
    # after it, the clock runs again: 12:41 is 3 intervals, 5.00 PLN more
    late = leave(entered, at(2028, 3, 3, 12, 41), time_stops=(kiosk,), tab=paid)
    assert (late.code, late.due_minor, late.charged_minor) == (RuleCode.DENIED_OWING, 500, 1500)


def test_billing_end_ignores_taps_before_the_stay_or_in_the_future():
    start, now = at(2028, 3, 3, 10, 0), at(2028, 3, 3, 12, 0)
    taps = (at(2028, 3, 3, 9, 58), at(2028, 3, 3, 12, 5))
    assert billing_end(start, now, taps, 10) == now
    assert billing_end(start, now, (at(2028, 3, 3, 11, 55),), 0) == now


def test_intervals_due():
    from datetime import timedelta as td

    assert intervals_due(td(minutes=125), td(minutes=120), RULE) == 0
    assert intervals_due(td(minutes=125, seconds=1), td(minutes=120), RULE) == 1
    assert intervals_due(td(minutes=150), td(minutes=120), RULE) == 2


def test_stay_lines_never_bill_a_negative_stay():
    lines = stay_lines(
        RULE,
        zone="facility",
        concession="adult",
        start=at(2028, 3, 3, 12),
        end=at(2028, 3, 3, 10),
        site=SITE,
    )
    assert lines == ()
