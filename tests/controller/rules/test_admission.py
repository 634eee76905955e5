import pytest

from controller.rules.admission import RULE_VERSION, Media, decide
from entrada.codes import Outcome

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("media", "allowed", "code"),
    [
        (None, False, Outcome.DENIED_UNKNOWN),
        (Media("04AA", "active"), True, Outcome.GRANTED),
        (Media("04AA", "blocked"), False, Outcome.DENIED_BLOCKED),
        (Media("04AA", "lost"), False, Outcome.DENIED_LOST),
        (Media("04AA", "expired"), False, Outcome.DENIED_EXPIRED),
        (Media("04AA", "active", valid_until=NOW - 1), False, Outcome.DENIED_EXPIRED),
        (Media("04AA", "active", valid_until=NOW + 1), True, Outcome.GRANTED),
        (Media("04AA", "something-new"), False, Outcome.DENIED_BLOCKED),
    ],
)
def test_decide(media, allowed, code):
    decision = decide(media, "in", NOW)
    assert (decision.allowed, decision.code) == (allowed, code)
    assert decision.rule_version == RULE_VERSION
    assert decision.charges == ()


def test_same_inputs_same_decision():
    m = Media("04AA", "active", valid_until=NOW)
    assert decide(m, "out", NOW) == decide(m, "out", NOW)
