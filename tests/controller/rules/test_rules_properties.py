"""Properties: charges never negative, overtime monotone in the stay, decisions pure and
replayable from their logged (JSON) input."""

import copy
import json
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_site import (
    ENTRANCE,
    EXIT,
    EXIT_COLLECTOR,
    POOL_IN,
    POOL_OUT,
    SAUNA_IN,
    SAUNA_OUT,
    SITE,
)

from controller.rules.billing import stay_lines, stay_minor
from controller.rules.codes import RuleCode
from controller.rules.model import (
    Assurance,
    Concession,
    Credential,
    Entitlement,
    Entitlements,
    History,
    MediaStatus,
    Passage,
    Posting,
    Presence,
    StayRule,
    Tab,
)
from controller.rules.serial import (
    DecisionInput,
    dump_decision,
    dump_input,
    load_decision,
    load_input,
    replay,
)
from controller.rules.timebands import Band, Rate, Window

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GATES = (ENTRANCE, EXIT, EXIT_COLLECTOR, POOL_IN, POOL_OUT, SAUNA_IN, SAUNA_OUT)
YEAR_2028 = datetime(2028, 1, 1, tzinfo=UTC)
DST_CHANGES = (datetime(2028, 3, 26, 1, tzinfo=UTC), datetime(2028, 10, 29, 1, tzinfo=UTC))

instants = st.one_of(
    st.integers(0, 366 * 24 * 3600).map(lambda s: YEAR_2028 + timedelta(seconds=s)),
    st.tuples(st.sampled_from(DST_CHANGES), st.integers(-6 * 3600, 6 * 3600)).map(
        lambda pair: pair[0] + timedelta(seconds=pair[1])
    ),
)
prices = st.integers(0, 5000)
rates = st.builds(
    Rate,
    prices=st.fixed_dictionaries({"adult": prices}, optional={"child": prices}),
    bands=st.lists(
        st.builds(
            Band,
            window=st.builds(
                Window,
                days=st.frozensets(
                    st.sampled_from(["mon", "fri", "sat", "sun", "hol"]), min_size=1
                ),
                start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
                end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
            ),
            prices=st.fixed_dictionaries({"adult": prices}),
        ),
        max_size=2,
    ).map(tuple),
)
stay_rules = st.builds(
    StayRule,
    rate=rates,
    included_minutes=st.integers(0, 240),
    interval_minutes=st.integers(1, 60),
    grace_minutes=st.integers(0, 30),
    daily_cap_minor=st.none() | st.integers(0, 20000),
)


@PROPS
@given(
    rule=stay_rules,
    concession=st.sampled_from(["adult", "child", "senior"]),
    start=instants,
    stay=st.integers(0, 40 * 3600),
    more=st.integers(0, 6 * 3600),
)
def test_overtime_is_never_negative_and_monotone_in_the_stay(rule, concession, start, stay, more):
    def owed(seconds):
        end = start + timedelta(seconds=seconds)
        lines = stay_lines(rule, zone="z", concession=concession, start=start, end=end, site=SITE)
        assert all(line.amount_minor > 0 for line in lines)
        total = sum(line.amount_minor for line in lines)
        assert total == stay_minor(rule, concession=concession, start=start, end=end, site=SITE)
        return total

    assert 0 <= owed(stay) <= owed(stay + more)


@st.composite
def decision_inputs(draw):
    now = draw(instants)
    entitlements = draw(
        st.lists(
            st.builds(
                Entitlement,
                id=st.sampled_from(["e1", "e2", "e3"]),
                tariff_id=st.sampled_from([*SITE.tariffs, "gone"]),
                concession=st.sampled_from(list(Concession)),
                valid_from=st.none() | st.dates(date(2027, 12, 1), date(2029, 1, 31)),
                valid_to=st.none() | st.dates(date(2027, 12, 1), date(2029, 1, 31)),
                entries_used=st.integers(0, 3) | st.integers(0, 12),
                first_used=st.none() | st.dates(date(2027, 12, 1), date(2029, 1, 31)),
                days_used=st.frozensets(st.dates(date(2028, 1, 1), date(2028, 12, 31)), max_size=4),
            ),
            min_size=1,
            max_size=3,
        )
    )
    ids = [e.id for e in entitlements] or [None]

    def passage(gate, minutes_ago, eid, consumed, offline):
        tariff = next((e.tariff_id for e in entitlements if e.id == eid), None)
        at = now - timedelta(minutes=minutes_ago)
        return Passage(
            at,
            gate.zone_from,
            gate.zone_to,
            gate.direction,
            eid,
            tariff,
            consumed,
            offline,
            gate.id,
        )

    visit = []
    if draw(st.booleans()):  # a plausible visit: in at the entrance, maybe on to the sauna
        came = draw(st.integers(0, 20 * 60))
        visit.append(passage(ENTRANCE, came, ids[0], True, draw(st.booleans())))
        if came > 10 and draw(st.booleans()):
            visit.append(passage(POOL_IN, came - 5, ids[0], False, False))
            if came > 20 and draw(st.booleans()):
                visit.append(passage(SAUNA_IN, came - 10, ids[0], False, False))
    passages = visit + draw(
        st.lists(
            st.builds(
                passage,
                st.sampled_from(GATES),
                st.integers(0, 3 * 24 * 60),
                st.sampled_from(ids),
                st.booleans(),
                st.booleans(),
            ),
            max_size=3,
        )
    )
    credential = draw(
        st.builds(
            Credential,
            uid=st.just("04A1B2C3D4E5F6"),
            status=st.sampled_from([MediaStatus.ACTIVE] * 6 + list(MediaStatus)),
            assurance=st.sampled_from(list(Assurance)),
            valid_until=st.none()
            | st.integers(-60, 3 * 24 * 60).map(lambda m: now + timedelta(minutes=m)),
            deposit_minor=st.integers(0, 5000),
        )
    )
    if draw(st.integers(1, 10)) == 7:
        credential = None  # unknown to the catalog
    tab = Tab(
        tuple(Posting(f"p{i}", a) for i, a in enumerate(draw(st.lists(prices, max_size=3)))),
        paid_minor=draw(st.integers(0, 20000)),
    )
    stops = draw(st.lists(st.integers(0, 24 * 60), max_size=2))
    return DecisionInput(
        credential,
        Entitlements(tuple(entitlements), tab),
        History(tuple(passages), tuple(now - timedelta(minutes=m) for m in stops)),
        Presence(
            draw(
                st.dictionaries(st.sampled_from(["facility", "pool", "sauna"]), st.integers(0, 600))
            )
        ),
        SITE,
        draw(st.sampled_from(GATES)),
        now,
        draw(st.none() | st.floats(0, 600, allow_nan=False)),
    )


@PROPS
@given(decision_inputs())
def test_charges_and_credits_are_never_negative(inp):
    decision = inp.decide()
    assert all(c.amount_minor >= 0 for c in (*decision.charges, *decision.credits))
    assert decision.due_minor >= 0
    assert (decision.due_minor > 0) == (decision.code is RuleCode.DENIED_OWING)
    assert decision.allowed == decision.code.startswith("granted")
    if decision.allowed:
        assert decision.due_minor == 0


@PROPS
@given(decision_inputs())
def test_same_inputs_same_decision(inp):
    first = inp.decide()
    assert inp.decide() == first
    assert copy.deepcopy(inp).decide() == first


@PROPS
@given(decision_inputs())
def test_a_decision_replays_from_its_logged_input(inp):
    decision = inp.decide()
    logged = json.loads(json.dumps(dump_input(inp)))
    assert load_input(logged) == inp
    assert replay(logged) == decision
    assert load_decision(json.loads(json.dumps(dump_decision(decision)))) == decision
