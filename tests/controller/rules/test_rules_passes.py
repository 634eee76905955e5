"""Single entries, passes and their allowances, date ranges, entry windows."""

from datetime import date

import pytest
from rules_site import ENTRANCE, EXIT, at, came_in, ent, tap, went

from controller.rules.codes import RuleCode
from controller.rules.explain import render


def entry(e, when, passages=()):
    return tap(ENTRANCE, when, e, passages=passages)


@pytest.mark.parametrize(
    ("e", "when", "code", "words"),
    [
        # a single entry, then it is used up
        (ent("single"), at(2028, 3, 3, 10, 0), RuleCode.GRANTED, "Welcome"),
        (
            ent("single", entries_used=1),
            at(2028, 3, 3, 10, 0),
            RuleCode.DENIED_PASS_USED_UP,
            "All 1 entries used",
        ),
        # 10 entries
        (
            ent("pass-10", entries_used=9, first_used=date(2028, 1, 5)),
            at(2028, 3, 3, 10, 0),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("pass-10", entries_used=10, first_used=date(2028, 1, 5)),
            at(2028, 3, 3, 10, 0),
            RuleCode.DENIED_PASS_USED_UP,
            "All 10 entries used",
        ),
        # 90 days from the first use on 5 Jan 2028 (a leap year): the last day is 3 April
        (
            ent("pass-10", entries_used=3, first_used=date(2028, 1, 5)),
            at(2028, 4, 3, 23, 59),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("pass-10", entries_used=3, first_used=date(2028, 1, 5)),
            at(2028, 4, 4, 0, 0),
            RuleCode.DENIED_EXPIRED,
            "Pass expired on 2028-04-03",
        ),
        # 2 days from the first use on Monday 28 Feb 2028: 28 and 29 Feb
        (
            ent("activation-2", first_used=date(2028, 2, 28)),
            at(2028, 2, 29, 23, 59),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("activation-2", first_used=date(2028, 2, 28)),
            at(2028, 3, 1, 0, 0),
            RuleCode.DENIED_EXPIRED,
            "Pass expired on 2028-02-29",
        ),
        # a ticket for the leap day only
        (
            ent("single", valid_from=date(2028, 2, 29), valid_to=date(2028, 2, 29)),
            at(2028, 2, 28, 23, 59),
            RuleCode.DENIED_NOT_YET_VALID,
            "Ticket valid from 2028-02-29",
        ),
        (
            ent("single", valid_from=date(2028, 2, 29), valid_to=date(2028, 2, 29)),
            at(2028, 2, 29, 0, 0),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("single", valid_from=date(2028, 2, 29), valid_to=date(2028, 2, 29)),
            at(2028, 3, 1, 0, 0),
            RuleCode.DENIED_EXPIRED,
            "Ticket expired on 2028-02-29",
        ),
        # any 3 days: 1 and 3 March taken
        (
            ent("flex-3", days_used=frozenset({date(2028, 3, 1), date(2028, 3, 3)})),
            at(2028, 3, 3, 23, 59),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("flex-3", days_used=frozenset({date(2028, 3, 1), date(2028, 3, 3)})),
            at(2028, 3, 6, 9, 0),
            RuleCode.GRANTED,
            "Welcome",
        ),
        (
            ent("flex-3", days_used=frozenset({date(2028, 3, d) for d in (1, 3, 6)})),
            at(2028, 3, 7, 9, 0),
            RuleCode.DENIED_DAYS_USED_UP,
            "All 3 days used",
        ),
        # weekday mornings, 06:00-17:00
        (ent("morning"), at(2028, 3, 3, 16, 59), RuleCode.GRANTED, "Welcome"),
        (
            ent("morning"),
            at(2028, 3, 3, 17, 0),
            RuleCode.DENIED_TIME_WINDOW,
            "Only allowed before 17:00",
        ),
        (ent("morning"), at(2028, 3, 3, 5, 30), RuleCode.DENIED_TIME_WINDOW, "Entry from 06:00"),
        (ent("morning"), at(2028, 3, 4, 10, 0), RuleCode.DENIED_TIME_WINDOW, "Not valid today"),
        (ent("morning"), at(2028, 5, 3, 10, 0), RuleCode.DENIED_TIME_WINDOW, "Not valid today"),
        # Friday and Saturday nights, 22:00-02:00, across midnight
        (ent("night-sauna"), at(2028, 3, 4, 1, 30), RuleCode.GRANTED, "Welcome"),
        (ent("night-sauna"), at(2028, 3, 5, 1, 30), RuleCode.GRANTED, "Welcome"),
        (ent("night-sauna"), at(2028, 3, 6, 1, 0), RuleCode.DENIED_TIME_WINDOW, "Not valid today"),
        (
            ent("night-sauna"),
            at(2028, 3, 3, 21, 59),
            RuleCode.DENIED_TIME_WINDOW,
            "Entry from 22:00",
        ),
        (ent("night-sauna"), at(2028, 3, 26, 1, 59), RuleCode.GRANTED, "Welcome"),
        (ent("night-sauna"), at(2028, 3, 26, 3, 0), RuleCode.DENIED_TIME_WINDOW, "Not valid today"),
    ],
)
def test_entry(e, when, code, words):
    decision = entry(e, when)
    assert (decision.code, render(decision.explanation)) == (code, words)
    assert decision.allowed is (code is RuleCode.GRANTED)


def test_usage_says_how_to_advance_the_counters():
    first = entry(ent("activation-2"), at(2028, 2, 29, 23, 50))
    assert first.usage.activates == date(2028, 2, 29) and first.usage.consumed
    assert first.explanation.as_dict() == {"valid_to": "2028-03-01"}

    flex = ent("flex-3", days_used=frozenset({date(2028, 3, 1), date(2028, 3, 3)}))
    same_day = entry(flex, at(2028, 3, 3, 23, 59))
    assert same_day.usage.day_of_choice is None
    assert same_day.explanation.as_dict() == {"days_left": 1}
    new_day = entry(flex, at(2028, 3, 6, 9, 0))
    assert new_day.usage.day_of_choice == date(2028, 3, 6)
    assert new_day.explanation.as_dict() == {"days_left": 0}

    last = entry(ent("pass-10", entries_used=9, first_used=date(2028, 1, 5)), at(2028, 3, 3, 9))
    assert last.explanation.as_dict() == {"entries_left": 0, "valid_to": "2028-04-03"}
    ten = entry(ent("pass-10", entries_used=4, first_used=date(2028, 1, 5)), at(2028, 3, 3, 9))
    assert ten.explanation.as_dict() == {"entries_left": 5, "valid_to": "2028-04-03"}


def test_minimum_gap_between_entries():
    pass10 = ent("pass-10", entries_used=1, first_used=date(2028, 3, 3))
    history = (came_in(at(2028, 3, 3, 10, 0), pass10), went(at(2028, 3, 3, 10, 20), EXIT, pass10))
    soon = entry(pass10, at(2028, 3, 3, 10, 40), history)
    assert (soon.code, render(soon.explanation)) == (
        RuleCode.DENIED_MIN_GAP,
        "Next entry from 11:00",
    )
    assert entry(pass10, at(2028, 3, 3, 11, 0), history).allowed


MONTH = ent("month-2h", valid_from=date(2028, 3, 1), valid_to=date(2028, 3, 31))


def visit(day, h1, m1, h2, m2, day2=None):
    return (
        came_in(at(2028, 3, day, h1, m1), MONTH),
        went(at(2028, 3, day2 or day, h2, m2), EXIT, MONTH),
    )


def test_daily_allowance_on_entry():
    morning_90 = visit(3, 8, 0, 9, 30)
    assert entry(MONTH, at(2028, 3, 3, 17, 0), morning_90).allowed
    morning_120 = visit(3, 8, 0, 10, 0)
    used_up = entry(MONTH, at(2028, 3, 3, 17, 0), morning_120)
    assert used_up.code is RuleCode.DENIED_DAILY_ALLOWANCE
    assert render(used_up.explanation) == "Today's 120 minutes are used up"
    # yesterday's visits do not count
    assert entry(MONTH, at(2028, 3, 4, 9, 0), morning_120).allowed


@pytest.mark.parametrize(
    ("earlier", "entered", "left", "owed"),
    [
        # 90 min used this morning: 30 min left; 17:00-17:30 is free, 17:45 is 1 x 6.00
        (visit(3, 8, 0, 9, 30), at(2028, 3, 3, 17, 0), at(2028, 3, 3, 17, 30), 0),
        (visit(3, 8, 0, 9, 30), at(2028, 3, 3, 17, 0), at(2028, 3, 3, 17, 45), 600),
        # a visit 23:00-01:00 across midnight leaves 60 min on 4 March; 90 min is 2 x 6.00
        (visit(3, 23, 0, 1, 0, day2=4), at(2028, 3, 4, 10, 0), at(2028, 3, 4, 11, 30), 1200),
        # nothing earlier: the full 2 h
        ((), at(2028, 3, 4, 10, 0), at(2028, 3, 4, 12, 0), 0),
    ],
)
def test_daily_allowance_bills_the_time_beyond_it_at_exit(earlier, entered, left, owed):
    history = (*earlier, came_in(entered, MONTH))
    decision = tap(EXIT, left, MONTH, passages=history)
    assert decision.due_minor == owed
