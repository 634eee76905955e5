"""The medium itself: unknown, blocked, lost, expired, low-assurance; gate and time inputs."""

from datetime import datetime

import pytest
from rules_site import BAND, ENTRANCE, EXIT, SITE, at, came_in, ent, tap

from controller.rules.codes import RuleCode
from controller.rules.errors import RulesInputError
from controller.rules.model import Assurance, Credential, Direction, Gate, MediaStatus

NOW = at(2028, 3, 3, 10, 0)
SINGLE = ent("single")


@pytest.mark.parametrize(
    ("credential", "entry", "exit_"),
    [
        (None, RuleCode.DENIED_UNKNOWN, RuleCode.DENIED_UNKNOWN),
        (BAND, RuleCode.GRANTED, RuleCode.GRANTED),
        (Credential("04AA", MediaStatus.BLOCKED), RuleCode.DENIED_BLOCKED, RuleCode.DENIED_BLOCKED),
        (Credential("04AA", MediaStatus.LOST), RuleCode.DENIED_LOST, RuleCode.DENIED_LOST),
        # an expired wristband may not come in, but may leave (and pays what it owes)
        (Credential("04AA", MediaStatus.EXPIRED), RuleCode.DENIED_EXPIRED, RuleCode.GRANTED),
        (
            Credential("04AA", valid_until=at(2028, 3, 3, 9, 59)),
            RuleCode.DENIED_EXPIRED,
            RuleCode.GRANTED,
        ),
        (Credential("04AA", valid_until=at(2028, 3, 3, 10, 0)), RuleCode.GRANTED, RuleCode.GRANTED),
        (Credential("04AA", assurance=Assurance.UID_ONLY), RuleCode.GRANTED, RuleCode.GRANTED),
    ],
)
def test_medium_on_entry_and_exit(credential, entry, exit_):
    assert tap(ENTRANCE, NOW, SINGLE, credential=credential).code is entry
    inside = (came_in(at(2028, 3, 3, 9, 0), SINGLE),)
    assert tap(EXIT, NOW, SINGLE, credential=credential, passages=inside).code is exit_


def test_a_denial_carries_versions_and_an_explanation():
    decision = tap(ENTRANCE, NOW, credential=None)
    assert (decision.allowed, decision.explanation.key) == (False, "denied.unknown")
    assert decision.rule_version == "rules/1" and decision.catalog_version == 42
    assert decision.charges == () and decision.due_minor == 0


def test_unix_time_and_aware_datetime_decide_alike():
    assert tap(ENTRANCE, NOW, SINGLE) == tap(ENTRANCE, NOW.timestamp(), SINGLE)


def test_naive_now_is_a_caller_error():
    with pytest.raises(RulesInputError):
        tap(ENTRANCE, datetime(2028, 3, 3, 10, 0), SINGLE)  # noqa: DTZ001


@pytest.mark.parametrize(
    "gate",
    [
        Gate("x", "sauna", "facility", Direction.IN),  # inward but towards the outside
        Gate("x", None, "facility", Direction.OUT),
        Gate("x", "facility", "facility", Direction.IN),
        Gate("x", None, "gym", Direction.IN),
    ],
)
def test_a_gate_that_does_not_fit_the_zone_tree_is_a_caller_error(gate):
    with pytest.raises(RulesInputError):
        tap(gate, NOW, SINGLE)


def test_site_refuses_a_tariff_for_an_unknown_zone():
    from dataclasses import replace

    from controller.rules.model import Tariff

    with pytest.raises(RulesInputError):
        replace(SITE, tariffs={"t": Tariff("t", frozenset({"gym"}))})
