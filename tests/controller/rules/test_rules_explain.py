"""Every explanation key the engine can produce has reference wording, and nothing more."""

import re
from pathlib import Path

import pytest

from controller.rules.codes import RuleCode
from controller.rules.decision import explain
from controller.rules.explain import EN, render

RULES = Path(__file__).resolve().parents[3] / "controller" / "rules"
DYNAMIC = {  # keys built at run time
    "granted",
    "granted.offline",  # the code itself (_welcome)
    "denied.time_window.later",
    "denied.time_window.ended",
    "denied.time_window.day",
    "denied.owing",
    "denied.owing.overtime",
}


def produced_keys():
    keys = set(DYNAMIC)
    for source in RULES.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        keys |= set(re.findall(r'explain\(\s*"([a-z_.]+)"', text))
        keys |= set(re.findall(r'RuleCode\.\w+,\s*"([a-z_.]+)"', text))  # tabs.deny(...)
    return keys


def test_every_key_has_wording_and_every_wording_is_used():
    assert produced_keys() == set(EN)


def test_every_denial_code_has_at_least_one_key():
    for code in (c for c in RuleCode if c.startswith("denied.")):
        assert any(key == code or key.startswith(f"{code}.") for key in EN), code


@pytest.mark.parametrize(
    ("explanation", "words"),
    [
        (explain("denied.time_window.ended", end="17:00"), "Only allowed before 17:00"),
        (
            explain("denied.owing.overtime", due="12.50", due_minor=1250, currency="PLN"),
            "Overtime 12.50 PLN due — pay at the kiosk",
        ),
        (explain("granted", entries_left=3), "Welcome"),
    ],
)
def test_render(explanation, words):
    assert render(explanation) == words


def test_a_missing_parameter_is_loud():
    with pytest.raises(KeyError):
        render(explain("denied.capacity"))
