"""Per-tariff offline policies: decide normally for X minutes without central, then admit
within a budget of entries per wristband, or deny. Exits are always decided normally."""

from datetime import date

import pytest
from rules_site import BAND, ENTRANCE, EXIT, SITE, at, came_in, ent, tap

from controller.rules.codes import RuleCode
from controller.rules.explain import render
from controller.rules.model import Credential, Entitlements, History, MediaStatus, Presence
from controller.rules.serial import DecisionInput, dump_input, replay

NOW = at(2028, 3, 3, 12, 0)
SINGLE = ent("single")  # offline: after 60 min, admit at most 1 entry
PASS10 = ent("pass-10", first_used=date(2028, 3, 1))  # after 30 min, admit at most 2
POSTPAID = ent("postpaid")  # offline: deny at once


@pytest.mark.parametrize(
    ("e", "minutes", "code", "offline"),
    [
        (SINGLE, None, RuleCode.GRANTED, False),
        (SINGLE, 0, RuleCode.GRANTED, False),
        (SINGLE, 60, RuleCode.GRANTED, False),
        (SINGLE, 61, RuleCode.GRANTED_OFFLINE, True),
        (POSTPAID, 0, RuleCode.GRANTED, False),
        (POSTPAID, 1, RuleCode.DENIED_OFFLINE, True),
    ],
)
def test_offline_policy(e, minutes, code, offline):
    decision = tap(ENTRANCE, NOW, e, minutes_offline=minutes)
    assert (decision.code, decision.offline) == (code, offline)


def test_offline_budget_per_wristband():
    earlier = came_in(at(2028, 3, 3, 9, 0), PASS10, offline=True)  # 3 h ago
    again = came_in(at(2028, 3, 3, 11, 0), PASS10, offline=True)  # 1 h ago
    history = (earlier, again)
    # offline for 90 min: only the 11:00 entry was offline-admitted in this outage
    assert tap(ENTRANCE, NOW, PASS10, passages=history, minutes_offline=90).allowed
    # offline for 4 h: both count, the budget of 2 is spent
    spent = tap(ENTRANCE, NOW, PASS10, passages=history, minutes_offline=240)
    assert spent.code is RuleCode.DENIED_OFFLINE_BUDGET and spent.offline
    assert render(spent.explanation) == "Gate offline: entries used up, please see the cashier"


def test_exits_ignore_the_offline_policy():
    inside = (came_in(at(2028, 3, 3, 10, 0), POSTPAID),)
    decision = tap(EXIT, NOW, POSTPAID, passages=inside, minutes_offline=600)
    assert decision.code is RuleCode.DENIED_OWING and not decision.offline


def test_central_replays_an_offline_admission_with_what_it_knows_now():
    logged = dump_input(
        DecisionInput(BAND, Entitlements((SINGLE,)), History(), Presence(), SITE, ENTRANCE, NOW, 90)
    )
    assert replay(logged).code is RuleCode.GRANTED_OFFLINE
    # the wristband had been reported lost at central meanwhile
    lost = Credential(BAND.uid, MediaStatus.LOST)
    again = replay(logged, credential=lost, minutes_offline=None)
    assert (again.code, again.offline) == (RuleCode.DENIED_LOST, False)
