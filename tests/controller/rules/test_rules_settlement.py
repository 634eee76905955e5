"""The final exit settles everything: tab postings, entry prices paid at exit, overtime,
less what was paid, and at a collecting gate the wristband deposit. Plus kiosk prices."""

import pytest
from rules_site import BAND, ENTRANCE, EXIT, EXIT_COLLECTOR, SITE, at, came_in, ent, tap

from controller.rules.billing import quote_entry
from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.errors import RulesInputError
from controller.rules.explain import render
from controller.rules.model import Assurance, Concession, Credential, MediaStatus, Posting, Tab
from controller.rules.tabs import authorize_posting

SINGLE = ent("single", entries_used=1)
INSIDE = (came_in(at(2028, 3, 3, 10, 0), SINGLE),)
NOW = at(2028, 3, 3, 12, 0)
BAR = Posting("bar-17", 1250, "Lemonade")
MASSAGE = Posting("spa-3", 8000, "Massage")


def leave(gate=EXIT, tab=None, credential=BAND):
    return tap(gate, NOW, SINGLE, passages=INSIDE, tab=tab, credential=credential)


def test_an_open_tab_is_settled_before_the_exit():
    unpaid = leave(tab=Tab((BAR, MASSAGE)))
    assert (unpaid.code, unpaid.due_minor) == (RuleCode.DENIED_OWING, 9250)
    assert [(c.code, c.amount_minor) for c in unpaid.charges] == [
        (ChargeCode.TAB, 1250),
        (ChargeCode.TAB, 8000),
    ]
    assert render(unpaid.explanation) == "92.50 PLN due — pay at the kiosk"
    assert leave(tab=Tab((BAR, MASSAGE), paid_minor=9250)).allowed
    partly = leave(tab=Tab((BAR, MASSAGE), paid_minor=8000))
    assert render(partly.explanation) == "12.50 PLN due — pay at the kiosk"


@pytest.mark.parametrize(
    ("gate", "tab", "allowed", "due", "credits"),
    [
        # deposit 20.00 PLN: a collector takes the band, the deposit pays 12.50, 7.50 back
        (
            EXIT_COLLECTOR,
            Tab((BAR,)),
            True,
            0,
            [(ChargeCode.DEPOSIT_APPLIED, 1250), (ChargeCode.DEPOSIT_REFUND, 750)],
        ),
        (EXIT_COLLECTOR, Tab(), True, 0, [(ChargeCode.DEPOSIT_REFUND, 2000)]),
        (EXIT_COLLECTOR, Tab((MASSAGE,)), False, 8000, []),  # more than the deposit
        (EXIT, Tab((BAR,)), False, 1250, []),  # no collector: the deposit stays put
    ],
)
def test_the_wristband_deposit(gate, tab, allowed, due, credits):
    band = Credential(BAND.uid, deposit_minor=2000)
    decision = leave(gate, tab, band)
    assert (decision.allowed, decision.due_minor) == (allowed, due)
    assert [(c.code, c.amount_minor) for c in decision.credits] == credits
    if credits and len(credits) == 2:
        assert render(decision.explanation) == "Goodbye: 7.50 PLN deposit returned"


POSTPAID = ent("postpaid")


@pytest.mark.parametrize(
    ("entered", "e", "price"),
    [
        (at(2028, 3, 3, 14, 0), POSTPAID, 3000),  # weekday before 15:00
        (at(2028, 3, 3, 15, 30), POSTPAID, 4000),
        (at(2028, 3, 4, 10, 0), POSTPAID, 4000),  # Saturday
        (at(2028, 3, 3, 10, 0), ent("postpaid", concession=Concession.CHILD), 1800),
    ],
)
def test_pay_at_exit_charges_the_price_of_the_entry_time(entered, e, price):
    history = (came_in(entered, e),)
    out = at(2028, 3, 4, 18, 0) if entered.day == 4 else at(2028, 3, 3, 18, 0)
    decision = tap(EXIT, out, e, passages=history)
    assert decision.code is RuleCode.DENIED_OWING and decision.due_minor == price
    assert decision.charges[0].code is ChargeCode.ENTRY
    assert tap(EXIT, out, e, passages=history, tab=Tab(paid_minor=price)).allowed


def test_pay_at_exit_needs_a_secure_medium():
    cheap = Credential(BAND.uid, assurance=Assurance.UID_ONLY)
    decision = tap(ENTRANCE, at(2028, 3, 3, 10, 0), POSTPAID, credential=cheap)
    assert decision.code is RuleCode.DENIED_LOW_ASSURANCE


@pytest.mark.parametrize(
    ("concession", "when", "price"),
    [
        (Concession.ADULT, at(2028, 3, 3, 10, 0), 3500),
        (Concession.CHILD, at(2028, 3, 3, 10, 0), 2000),
        (Concession.SENIOR, at(2028, 3, 3, 10, 0), 2500),
        (Concession.STUDENT, at(2028, 3, 3, 10, 0), 2800),
        (Concession.DISABLED, at(2028, 3, 3, 10, 0), 1500),
        (Concession.ADULT, at(2028, 3, 3, 20, 30), 2500),  # weekday evening band
        (Concession.CHILD, at(2028, 3, 3, 20, 30), 2000),  # the band has no child price
        (Concession.ADULT, at(2028, 3, 3, 23, 59), 3500),  # Friday ...
        (Concession.ADULT, at(2028, 3, 4, 0, 0), 4500),  # ... Saturday from midnight
        (Concession.CHILD, at(2028, 3, 4, 10, 0), 2500),
        (Concession.SENIOR, at(2028, 3, 4, 10, 0), 2500),  # no weekend senior price
        (Concession.ADULT, at(2028, 5, 3, 10, 0), 4500),  # holiday
        (Concession.ADULT, at(2028, 3, 26, 3, 0), 4500),  # the spring-forward Sunday
        (Concession.ADULT, at(2028, 2, 29, 10, 0), 3500),  # leap day, a Tuesday
    ],
)
def test_kiosk_prices_by_concession_and_band(concession, when, price):
    assert quote_entry(SITE.tariffs["single"], concession, when, SITE).amount_minor == price


TAB = Tab((Posting("bar-1", 9000),), limit_minor=10000)


@pytest.mark.parametrize(
    ("credential", "amount", "code"),
    [
        (BAND, 1000, RuleCode.GRANTED),
        (BAND, 1001, RuleCode.DENIED_TAB_LIMIT),
        (Credential(BAND.uid, assurance=Assurance.UID_ONLY), 100, RuleCode.DENIED_LOW_ASSURANCE),
        (Credential(BAND.uid, MediaStatus.BLOCKED), 100, RuleCode.DENIED_BLOCKED),
        (None, 100, RuleCode.DENIED_UNKNOWN),
    ],
)
def test_a_point_of_sale_asks_before_posting(credential, amount, code):
    from controller.rules.model import Entitlements

    decision = authorize_posting(credential, Entitlements((SINGLE,), TAB), amount, SITE, NOW)
    assert decision.code is code
    if code is RuleCode.GRANTED:
        assert [(c.code, c.amount_minor) for c in decision.charges] == [(ChargeCode.TAB, 1000)]
    if code is RuleCode.DENIED_TAB_LIMIT:
        assert render(decision.explanation) == "Tab limit of 100.00 PLN reached"


def test_a_posting_is_a_positive_int():
    from controller.rules.model import Entitlements

    for amount in (0, -5, 12.5):
        with pytest.raises(RulesInputError):
            authorize_posting(BAND, Entitlements(), amount, SITE, NOW)
