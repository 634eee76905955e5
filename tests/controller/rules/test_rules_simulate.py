"""controller.rules.simulate: the input lines, their errors, and a day run through the engine."""

import copy
import json
from datetime import UTC, datetime

import pytest
from rules_site import CATALOG, SITE, WARSAW

from controller.rules.catalog_schema import parse_catalog
from controller.rules.errors import CatalogError
from controller.rules.sim_input import (
    GateLine,
    PayLine,
    PostLine,
    SellLine,
    SimulationInputError,
    TapLine,
    TimeStopLine,
    WristbandLine,
    local_instant,
    parse_input,
    parse_rules,
)
from controller.rules.simulate import simulate

GATES = [
    {"gate": "in", "zone_to": "facility", "direction": "in"},
    {"gate": "out", "zone_from": "facility", "direction": "out"},
    {"gate": "out-c", "zone_from": "facility", "direction": "out", "collects_media": True},
    {"gate": "sauna-in", "zone_from": "facility", "zone_to": "sauna", "direction": "in"},
    {"gate": "sauna-out", "zone_from": "sauna", "zone_to": "facility", "direction": "out"},
]
UID = "04A1B2C3"
OTHER = "04D4E5F6"


def text(*lines, gates=True):
    """JSON Lines of the gates above and ``lines`` (dicts or raw strings)."""
    rows = [*(GATES if gates else []), *lines]
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)


def errors_of(source, site=SITE):
    with pytest.raises(SimulationInputError) as info:
        parse_input(source, site)
    return info.value.errors


def run(*lines, site=SITE):
    return simulate(text(*lines), site)


def codes(sim):
    return [None if r.decision is None else str(r.decision.code) for r in sim.results]


def naive(text):
    return datetime.fromisoformat(text)


def at(hhmm, day="2028-03-03"):
    return f"{day}T{hhmm}"


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("line", "model"),
    [
        ({"gate": "g", "zone_to": "facility", "direction": "in"}, GateLine),
        ({"at": at("10:00"), "wristband": UID, "deposit_minor": 1000}, WristbandLine),
        ({"at": at("10:00"), "sell": UID, "tariff": "single", "concession": "child"}, SellLine),
        ({"at": at("10:00"), "tap": UID, "gate": "in", "offline_minutes": 61}, TapLine),
        ({"at": at("10:00"), "post": UID, "amount_minor": 1250, "ref": "bar-1"}, PostLine),
        ({"at": at("10:00"), "pay": UID, "amount_minor": 1250, "method": "card"}, PayLine),
        ({"at": at("10:00"), "timestop": UID}, TimeStopLine),
    ],
)
def test_each_action_parses_to_its_line(line, model):
    steps = parse_input(text(line, gates=model is not GateLine), SITE)
    assert isinstance(steps[-1].data, model)


def test_comments_blank_lines_and_generated_ids():
    source = text(
        "# a comment",
        "",
        {"at": at("10:00"), "sell": UID, "tariff": "single"},
        {"at": at("10:00"), "sell": UID, "tariff": "pass-10", "id": "P1"},
        {"at": at("10:01"), "post": UID, "amount_minor": 100},
        gates=False,
    )
    steps = parse_input(source, SITE)
    assert [(s.line, s.action, s.key) for s in steps] == [
        (3, "sell", "L000003"),
        (4, "sell", "P1"),
        (5, "post", "L000005"),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"at": ', "line 6: not JSON:"),
        ("[1, 2]", "line 6: expected a JSON object"),
        ({"at": at("10:00")}, "line 6: no action"),
        ({"at": at("10:00"), "tapp": UID, "gate": "in"}, "line 6: unknown action 'tapp' (did "),
        ({"at": at("10:00"), "pay": UID, "post": UID}, "line 6: more than one action (post, pay)"),
        ({"tap": UID, "gate": "in"}, "line 6: at: missing"),
        ({"at": at("10:00"), "tap": UID, "gate": "inn"}, "line 6: gate: no gate 'inn' is declared"),
        ({"at": at("10:00"), "tap": UID, "gate": "in", "ofline_minutes": 1}, "'offline_minutes'"),
        ({"at": at("10:00"), "tap": UID, "gate": "in", "offline_minutes": -1}, "offline_minutes:"),
        ({"at": at("10:00"), "tap": "04a1b2c3", "gate": "in"}, "line 6: tap: String should"),
        ({"at": at("10:00"), "post": UID, "amount_minor": 12.5}, "amount_minor: Input should be"),
        ({"at": at("10:00"), "post": UID, "amount_minor": 0}, "line 6: amount_minor:"),
        ({"at": at("10:00"), "pay": UID, "amount_minor": "10"}, "line 6: amount_minor:"),
        ({"at": at("10:00"), "wristband": UID, "status": "gone"}, "line 6: status:"),
        ({"at": at("10:00"), "wristband": UID, "deposit": 1}, "(did you mean 'deposit_minor'?)"),
        ({"at": at("10:00"), "sell": UID, "tariff": "x", "concession": "kid"}, "concession:"),
        ({"at": at("10:00"), "sell": UID, "tariff": "x", "valid_to": "2027-02-29"}, "valid_to:"),
        (
            {
                "at": at("10:00"),
                "sell": UID,
                "tariff": "x",
                "valid_from": "2028-03-04",
                "valid_to": "2028-03-03",
            },
            "line 6: valid_to: before valid_from",
        ),
        ({"at": "10:00", "timestop": UID}, "line 6: at: a time is 'YYYY-MM-DDTHH:MM"),
        ({"at": 1_800_000_000, "timestop": UID}, "line 6: at: a time is"),
        ({"at": "2028-02-30T10:00", "timestop": UID}, "line 6: at: not a real time"),
        ({"gate": "in", "zone_to": "facility", "direction": "in"}, "line 6: gate 'in' is already"),
        ({"gate": "g", "zone_to": "pol", "direction": "in"}, "unknown zone 'pol' (did you mean"),
        ({"gate": "g", "zone_from": "sauna", "zone_to": "pool", "direction": "in"}, "gate 'g':"),
        ({"gate": "g", "zone_to": "pool", "direction": "out"}, "line 6: gate 'g': out from"),
        ({"gate": "g", "zone_to": "pool", "direction": "up"}, "line 6: direction:"),
    ],
)
def test_a_bad_line_is_named_with_its_field(line, error):
    assert any(e.startswith(error) or error in e for e in errors_of(text(line))), errors_of(
        text(line)
    )


def test_every_error_of_the_file_at_once_in_line_order():
    source = text(
        {"at": at("10:00"), "tap": UID, "gate": "nowhere"},
        '{"broken": ',
        {"at": at("10:00"), "sell": UID, "tariff": "single", "id": "T"},
        {"at": at("10:00"), "sell": UID, "tariff": "single", "id": "T"},
        {"at": at("10:00"), "post": UID, "amount_minor": 1, "ref": "R"},
        {"at": at("10:00"), "post": UID, "amount_minor": 1, "ref": "R"},
    )
    errors = errors_of(source)
    assert [e.split(":")[0] for e in errors] == ["line 6", "line 7", "line 9", "line 11"]
    assert "'T' is already used on line 8" in errors[2]
    assert "'R' is already used on line 10" in errors[3]


@pytest.mark.parametrize(
    ("times", "bad"),
    [
        (["10:00", "10:00", "10:01"], []),
        (["10:00", "09:59", "10:01"], [7]),
        (["10:00", "11:00", "10:30", "12:00"], [8]),
        (["10:00", "2028-03-03T09:30:00+00:00"], []),  # 10:30 in Warsaw
        (["10:00", "2028-03-03T08:30:00Z"], [7]),  # 09:30 in Warsaw
    ],
)
def test_lines_go_in_time_order(times, bad):
    lines = [{"at": t if "T" in t else at(t), "timestop": UID} for t in times]
    source = text(*lines)
    if not bad:
        parse_input(source, SITE)
        return
    errors = errors_of(source)
    assert [int(e.split(":")[0].removeprefix("line ")) for e in errors] == bad
    assert f"is earlier than line {bad[0] - 1}" in errors[0]


@pytest.mark.parametrize(
    ("naive", "utc"),
    [
        (naive("2028-03-03T10:00"), datetime(2028, 3, 3, 9, 0, tzinfo=UTC)),
        (naive("2028-07-01T10:00"), datetime(2028, 7, 1, 8, 0, tzinfo=UTC)),
        (naive("2028-03-26T01:59"), datetime(2028, 3, 26, 0, 59, tzinfo=UTC)),
        (naive("2028-03-26T03:00"), datetime(2028, 3, 26, 1, 0, tzinfo=UTC)),
        (naive("2028-10-29T01:59"), datetime(2028, 10, 28, 23, 59, tzinfo=UTC)),
        (naive("2028-10-29T03:00"), datetime(2028, 10, 29, 2, 0, tzinfo=UTC)),
    ],
)
def test_local_times_are_read_in_the_site_zone(naive, utc):
    assert local_instant(naive, WARSAW) == utc


@pytest.mark.parametrize(
    ("naive", "words"),
    [
        (naive("2028-10-29T02:30"), "happens twice"),  # the clocks go back
        (naive("2028-10-29T02:00"), "happens twice"),
        (naive("2028-03-26T02:30"), "does not exist"),  # the clocks skip it
    ],
)
def test_times_the_clock_shows_twice_or_never_are_errors(naive, words):
    with pytest.raises(ValueError, match=words):
        local_instant(naive, WARSAW)


def test_a_dst_ambiguous_line_is_an_error_and_an_offset_settles_it():
    (error,) = errors_of(text({"at": "2028-10-29T02:30", "timestop": UID}))
    assert error.startswith("line 6: at: 2028-10-29 02:30 happens twice in Europe/Warsaw")
    assert "2028-10-29T02:30+02:00 or 2028-10-29T02:30+01:00" in error
    steps = parse_input(text({"at": "2028-10-29T02:30+01:00", "timestop": UID}), SITE)
    assert steps[-1].data.at == datetime(2028, 10, 29, 1, 30, tzinfo=UTC)


# ------------------------------------------------------------------------------ the run


def test_overtime_refused_exit_then_paid():
    sim = run(
        {"at": at("09:55"), "sell": UID, "tariff": "timed-2h"},
        {"at": at("10:00"), "tap": UID, "gate": "in"},
        {"at": at("12:30"), "tap": UID, "gate": "out"},
        {"at": at("12:30"), "pay": UID, "amount_minor": 1000},
        {"at": at("12:30"), "tap": UID, "gate": "out"},
    )
    assert codes(sim) == [None, "granted", "denied.owing", None, "granted"]
    refused, paid = sim.results[2].decision, sim.results[4].decision
    assert refused.due_minor == 1000 and refused.explanation.key == "denied.owing.overtime"
    assert [(c.code, c.amount_minor) for c in paid.charges] == [("overtime", 1000)]
    assert sim.results[0].amount_minor == 4000  # sold at the Friday adult price
    s = sim.summary
    assert (s.taps, s.granted, s.denied, s.owing_refusals) == (3, 2, {"denied.owing": 1}, 1)
    assert (s.charged_minor, s.charged_by_code, s.paid_minor) == (1000, {"overtime": 1000}, 1000)
    assert (s.sold, s.sales_minor, s.inside_at_end) == (1, 4000, 0)


def test_a_denied_tap_records_nothing_and_a_granted_one_a_passage():
    sim = run(
        {"at": at("09:55"), "sell": UID, "tariff": "single"},
        {"at": at("10:00"), "tap": UID, "gate": "sauna-in"},  # not on a single: nothing
        {"at": at("10:00"), "tap": UID, "gate": "in"},
        {"at": at("10:02"), "tap": UID, "gate": "in"},  # passback (3 minutes)
        {"at": at("10:03"), "tap": UID, "gate": "out"},
        {"at": at("10:10"), "tap": UID, "gate": "in"},  # the single entry is used
    )
    assert codes(sim) == [
        None,
        "denied.zone",
        "granted",
        "denied.passback",
        "granted",
        "denied.pass_used_up",
    ]
    assert sim.summary.inside_at_end == 0


def test_time_stop_at_the_kiosk():
    other = {"at": at("09:55"), "sell": OTHER, "tariff": "timed-2h"}
    sim = run(
        {"at": at("09:55"), "sell": UID, "tariff": "timed-2h"},
        other,
        {"at": at("10:00"), "tap": UID, "gate": "in"},
        {"at": at("10:00"), "tap": OTHER, "gate": "in"},
        {"at": at("12:30"), "timestop": UID},
        {"at": at("12:30"), "timestop": OTHER},
        {"at": at("12:30"), "pay": UID, "amount_minor": 1000},
        {"at": at("12:30"), "pay": OTHER, "amount_minor": 1000},
        {"at": at("12:38"), "tap": UID, "gate": "out"},
        {"at": at("12:41"), "tap": OTHER, "gate": "out"},
    )
    assert codes(sim)[-2:] == ["granted", "denied.owing"]
    assert sim.results[-1].decision.due_minor == 500


def test_postings_go_on_the_tab_up_to_its_limit_and_uid_only_gets_none():
    sim = run(
        {"at": at("09:00"), "wristband": UID, "tab_limit_minor": 10000, "deposit_minor": 2000},
        {"at": at("09:00"), "wristband": OTHER, "assurance": "uid_only"},
        {"at": at("09:05"), "sell": UID, "tariff": "day-sauna"},
        {"at": at("09:10"), "tap": UID, "gate": "in"},
        {"at": at("10:00"), "post": UID, "amount_minor": 9000, "description": "massage"},
        {"at": at("10:05"), "post": UID, "amount_minor": 1001},
        {"at": at("10:06"), "post": UID, "amount_minor": 1000},
        {"at": at("10:07"), "post": OTHER, "amount_minor": 100},
        {"at": at("10:08"), "post": "04FFFFFF", "amount_minor": 100},
        {"at": at("11:00"), "tap": UID, "gate": "out-c"},
        {"at": at("11:01"), "pay": UID, "amount_minor": 9000},
        {"at": at("11:02"), "tap": UID, "gate": "out-c"},
    )
    assert codes(sim)[4:] == [
        "granted",
        "denied.tab_limit",
        "granted",
        "denied.low_assurance",
        "denied.unknown",
        "denied.owing",
        None,
        "granted",
    ]
    assert dict(sim.results[4].decision.charges[0].params)["description"] == "massage"
    assert sim.results[9].decision.due_minor == 10000
    final = sim.results[11].decision
    assert [(c.code, c.amount_minor) for c in final.credits] == [
        ("deposit.applied", 1000),
        ("deposit.refund", 1000),
    ]
    s = sim.summary
    assert s.postings == 5 and s.postings_refused == {
        "denied.low_assurance": 1,
        "denied.tab_limit": 1,
        "denied.unknown": 1,
    }
    assert (s.charged_minor, s.paid_minor) == (10000, 9000)
    assert (s.deposit_applied_minor, s.deposit_refunded_minor) == (1000, 1000)


def test_a_sauna_stay_is_posted_to_the_tab_and_settled_at_the_exit():
    sim = run(
        {"at": at("10:50"), "sell": UID, "tariff": "day-sauna"},
        {"at": at("10:55"), "tap": UID, "gate": "in"},
        {"at": at("11:00"), "tap": UID, "gate": "sauna-in"},
        {"at": at("11:45"), "tap": UID, "gate": "sauna-out"},
        {"at": at("12:00"), "tap": UID, "gate": "out"},
        {"at": at("12:01"), "pay": UID, "amount_minor": 2000},
        {"at": at("12:02"), "tap": UID, "gate": "out"},
    )
    inner = sim.results[3].decision
    assert inner.post_to_tab and [(c.code, c.amount_minor) for c in inner.charges] == [
        ("stay", 2000)
    ]
    assert codes(sim)[4:] == ["denied.owing", None, "granted"]
    assert sim.summary.charged_by_code == {"stay": 2000}  # counted once, not again as tab


def test_occupancy_is_the_latest_passage_of_each_wristband():
    doc = copy.deepcopy(CATALOG)
    doc["zones"][2]["capacity"] = 1
    site = parse_catalog(doc)
    sim = run(
        {"at": at("10:00"), "sell": UID, "tariff": "day-sauna"},
        {"at": at("10:00"), "sell": OTHER, "tariff": "day-sauna"},
        {"at": at("10:01"), "tap": UID, "gate": "in"},
        {"at": at("10:01"), "tap": OTHER, "gate": "in"},
        {"at": at("10:05"), "tap": UID, "gate": "sauna-in"},
        {"at": at("10:06"), "tap": OTHER, "gate": "sauna-in"},
        {"at": at("10:10"), "tap": UID, "gate": "sauna-out"},
        {"at": at("10:11"), "tap": OTHER, "gate": "sauna-in"},
        site=site,
    )
    assert codes(sim)[4:] == ["granted", "denied.capacity", "granted", "granted"]
    assert sim.summary.inside_at_end == 2


def test_offline_minutes_apply_the_tariffs_policy():
    sim = run(
        {"at": at("10:00"), "sell": UID, "tariff": "single"},
        {"at": at("10:00"), "sell": OTHER, "tariff": "postpaid"},
        {"at": at("10:01"), "tap": UID, "gate": "in", "offline_minutes": 61},
        {"at": at("10:01"), "tap": OTHER, "gate": "in", "offline_minutes": 1},
    )
    assert codes(sim)[2:] == ["granted.offline", "denied.offline"]
    assert sim.results[2].decision.offline


def test_wristband_lines_change_only_the_fields_given():
    sim = run(
        {"at": at("09:00"), "wristband": UID, "deposit_minor": 2000},
        {"at": at("09:01"), "sell": UID, "tariff": "single"},
        {"at": at("09:02"), "wristband": UID, "status": "lost"},
        {"at": at("09:03"), "tap": UID, "gate": "in"},
        {"at": at("09:04"), "wristband": UID, "status": "active", "valid_until": at("09:05")},
        {"at": at("09:05"), "tap": UID, "gate": "in"},
        {"at": at("09:06"), "tap": UID, "gate": "in"},
    )
    params = dict(sim.results[2].explanation.params)
    assert (params["status"], params["deposit_minor"]) == ("lost", 2000)
    assert codes(sim)[3:] == ["denied.lost", None, "granted", "denied.expired"]


def test_a_sale_auto_creates_the_wristband_and_an_unknown_tariff_is_shown():
    sim = run(
        {"at": at("10:00"), "tap": UID, "gate": "in"},
        {"at": at("10:01"), "sell": UID, "tariff": "gone"},
        {"at": at("10:02"), "tap": UID, "gate": "in"},
        {"at": at("10:03"), "sell": UID, "tariff": "postpaid", "concession": "child"},
    )
    assert codes(sim) == ["denied.unknown", None, "denied.tariff_unknown", None]
    assert sim.results[1].explanation.key == "sim.sold.unknown_tariff"
    assert sim.results[3].explanation.key == "sim.sold.pay_at_exit"
    assert sim.summary.sales_minor == 0


def test_pass_usage_counts_the_baseline_and_the_recorded_entries():
    sim = run(
        {"at": at("08:00"), "sell": UID, "tariff": "pass-10", "entries_used": 8},
        {"at": at("08:00"), "tap": UID, "gate": "in"},
        {"at": at("08:30"), "tap": UID, "gate": "out"},
        {"at": at("09:30"), "tap": UID, "gate": "in"},
        {"at": at("10:00"), "tap": UID, "gate": "out"},
        {"at": at("11:00"), "tap": UID, "gate": "in"},
    )
    assert codes(sim)[1:] == ["granted", "granted", "granted", "granted", "denied.pass_used_up"]
    assert dict(sim.results[3].explanation.params)["entries_left"] == 0


# ---------------------------------------------------------------------------- the rules


def test_rules_without_a_version_are_version_0():
    doc = {k: v for k, v in CATALOG.items() if k != "version"}
    assert parse_rules(doc).catalog_version == 0
    assert parse_rules(CATALOG).catalog_version == 42


def test_invalid_rules_list_their_errors():
    with pytest.raises(CatalogError) as info:
        parse_rules({"site": {}, "zones": []})
    assert "site.id: Field required" in info.value.errors
