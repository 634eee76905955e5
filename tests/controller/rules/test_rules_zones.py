"""Zones: entitlements per zone, moving on inside, capacity, anti-passback, sauna billing."""

import pytest
from rules_site import (
    BAND,
    ENTRANCE,
    EXIT,
    POOL_IN,
    SAUNA_IN,
    SAUNA_OUT,
    at,
    came_in,
    ent,
    tap,
    went,
)

from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.explain import render
from controller.rules.model import Assurance, Concession, Credential
from controller.rules.zones import Zone, ZoneTree

NOW = at(2028, 3, 3, 11, 0)
SINGLE = ent("single", entries_used=1)
DAY = ent("day-sauna", entries_used=1)
IN_AT_10 = came_in(at(2028, 3, 3, 10, 0), DAY)


def test_tree_paths():
    tree = ZoneTree.of(Zone("facility"), Zone("pool", "facility"), Zone("sauna", "pool"))
    assert tree.entered(None, "pool") == ("facility", "pool")
    assert tree.left("sauna", None) == ("sauna", "pool", "facility")
    assert tree.left("sauna", "pool") == ("sauna",)
    assert tree.is_within("sauna", "facility") and not tree.is_within("pool", "sauna")


def test_zone_entitlements():
    assert tap(SAUNA_IN, NOW, SINGLE).code is RuleCode.DENIED_ZONE
    assert tap(SAUNA_IN, NOW, SINGLE).explanation.as_dict() == {"zone": "sauna"}
    assert tap(ENTRANCE, NOW).code is RuleCode.DENIED_NO_ENTITLEMENT
    assert tap(ENTRANCE, NOW, ent("gone")).code is RuleCode.DENIED_TARIFF_UNKNOWN


def test_moving_on_inside_consumes_nothing():
    # the single entry was used at the entrance; the pool is part of the same ticket
    decision = tap(POOL_IN, NOW, SINGLE, passages=(came_in(at(2028, 3, 3, 10, 0), SINGLE),))
    assert decision.allowed and not decision.usage.consumed
    assert decision.usage.entitlement_id == SINGLE.id


def test_an_add_on_is_used_only_when_no_ticket_already_covers_the_move():
    add_on = ent("sauna-3", "e2", entries_used=1)
    covered = tap(SAUNA_IN, NOW, add_on, DAY)
    assert covered.usage.entitlement_id == DAY.id and not covered.usage.consumed
    decision = tap(SAUNA_IN, NOW, add_on, SINGLE)
    assert decision.usage.entitlement_id == add_on.id and decision.usage.consumed
    assert decision.explanation.as_dict() == {"entries_left": 1}


@pytest.mark.parametrize(
    ("gate", "occupancy", "code"),
    [
        (SAUNA_IN, {"sauna": 19}, RuleCode.GRANTED),
        (SAUNA_IN, {"sauna": 20}, RuleCode.DENIED_CAPACITY),
        (SAUNA_IN, {"facility": 500}, RuleCode.GRANTED),  # already inside the facility
        (ENTRANCE, {"facility": 500}, RuleCode.DENIED_CAPACITY),
        (ENTRANCE, {}, RuleCode.GRANTED),  # unknown occupancy counts as empty
    ],
)
def test_capacity(gate, occupancy, code):
    fresh = ent("day-sauna")
    decision = tap(gate, NOW, fresh, occupancy=occupancy)
    assert decision.code is code
    if code is RuleCode.DENIED_CAPACITY:
        assert render(decision.explanation).endswith("is full: please wait")


def test_anti_passback_with_timeout():
    morning = ent("morning")  # no entry limit: a second entry is a question of passback
    came = came_in(at(2028, 3, 3, 10, 0), morning)
    again = tap(ENTRANCE, at(2028, 3, 3, 10, 2), morning, passages=(came,))
    assert again.code is RuleCode.DENIED_PASSBACK
    assert render(again.explanation) == "Already passed: try again after 10:03"
    # after the timeout the exit tap is taken as missed
    assert tap(ENTRANCE, at(2028, 3, 3, 10, 3), morning, passages=(came,)).allowed

    left = went(at(2028, 3, 3, 11, 0), EXIT, morning)
    twice = tap(EXIT, at(2028, 3, 3, 11, 1), morning, passages=(came, left))
    assert twice.code is RuleCode.DENIED_PASSBACK
    late = tap(EXIT, at(2028, 3, 3, 11, 5), morning, passages=(came, left))
    assert late.code is RuleCode.GRANTED_UNMATCHED_EXIT and late.allowed


def test_exit_without_a_recorded_entry():
    assert tap(EXIT, NOW, SINGLE).code is RuleCode.GRANTED_UNMATCHED_EXIT


# The day ticket bills the sauna by time: 10.00 PLN per started 30 min from the first
# minute (senior 7.00), capped at 30.00 PLN a day, posted to the tab on leaving it.
@pytest.mark.parametrize(
    ("concession", "out", "amount"),
    [
        (Concession.ADULT, at(2028, 3, 3, 11, 0), 0),
        (Concession.ADULT, at(2028, 3, 3, 11, 45), 2000),
        (Concession.SENIOR, at(2028, 3, 3, 11, 45), 1400),
        (Concession.ADULT, at(2028, 3, 3, 14, 0), 3000),  # 6 x 10.00 capped at 30.00
    ],
)
def test_sauna_stay_is_posted_to_the_tab(concession, out, amount):
    day = ent("day-sauna", entries_used=1, concession=concession)
    history = (
        came_in(at(2028, 3, 3, 10, 0), day),
        went(at(2028, 3, 3, 10, 5), POOL_IN, day),
        went(at(2028, 3, 3, 11, 0), SAUNA_IN, day),
    )
    decision = tap(SAUNA_OUT, out, day, passages=history)
    assert decision.allowed and decision.code is RuleCode.GRANTED
    assert decision.charged_minor == amount and decision.due_minor == 0
    assert decision.post_to_tab is bool(amount)
    if amount:
        assert decision.charges[0].code is ChargeCode.STAY
        assert decision.explanation.key == "granted.exit.posted"
    if amount == 2000:
        assert render(decision.explanation) == "20.00 PLN added to your tab"


def test_uid_only_media_may_not_run_up_a_tab_in_the_sauna():
    cheap = Credential(BAND.uid, assurance=Assurance.UID_ONLY)
    history = (IN_AT_10, went(at(2028, 3, 3, 10, 5), POOL_IN, DAY))
    decision = tap(SAUNA_IN, NOW, DAY, credential=cheap, passages=history)
    assert decision.code is RuleCode.DENIED_LOW_ASSURANCE
    assert tap(SAUNA_IN, NOW, DAY, passages=history).allowed
