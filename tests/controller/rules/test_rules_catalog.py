import copy
from datetime import date, time

import pytest
from rules_site import CATALOG, SITE, WARSAW

from controller.rules.catalog_schema import parse_catalog
from controller.rules.errors import CatalogError
from controller.rules.model import OfflineMode


def broken(**changes):
    doc = copy.deepcopy(CATALOG)
    for path, value in changes.items():
        target = doc
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    return doc


def errors_of(doc):
    with pytest.raises(CatalogError) as info:
        parse_catalog(doc)
    return info.value.errors


def test_the_example_catalog_parses():
    assert SITE.tz == WARSAW and SITE.currency == "PLN" and SITE.catalog_version == 42
    assert SITE.holidays == {date(2028, 5, 3), date(2028, 11, 1)}
    assert SITE.zones.path("sauna") == ("facility", "pool", "sauna")
    timed = SITE.tariffs["timed-2h"]
    rule = timed.stay["facility"]
    assert (rule.included_minutes, rule.interval_minutes, rule.grace_minutes) == (120, 15, 5)
    assert rule.daily_cap_minor == 6000 and rule.rate.prices == {"adult": 500, "child": 300}
    assert timed.entry_windows[0].start == time(6) and timed.time_stop_minutes == 10
    assert SITE.tariffs["postpaid"].offline.mode is OfflineMode.DENY
    assert parse_catalog(copy.deepcopy(CATALOG)) == SITE


def test_every_error_is_listed_at_once_with_its_place():
    doc = broken(
        version=-1,
        site__currency="zł",
        tariffs__1__stay__facility__interval_minutes=0,
        tariffs__0__price__prices__adult=35.0,
    )
    errors = errors_of(doc)
    assert len(errors) == 4
    assert any(e.startswith("version:") for e in errors)
    assert any(e.startswith("site.currency:") for e in errors)
    assert any(e.startswith("tariffs[1].stay.facility.interval_minutes:") for e in errors)
    assert any(e.startswith("tariffs[0].price.prices.adult:") for e in errors)  # no floats


def test_unknown_keys_get_a_did_you_mean():
    doc = broken(tariffs__1__stay__facility__grace_minute=5)
    assert errors_of(doc) == [
        "tariffs[1].stay.facility.grace_minute: unknown key (did you mean 'grace_minutes'?)"
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"site__holidays": ["2027-02-29"]}, "site.holidays[0]"),  # 2027 is not a leap year
        ({"site__tz": "Europe/Warsau"}, "site.tz"),
        ({"tariffs__6__entry_windows": [{"start": "24:00"}]}, "tariffs[6].entry_windows[0].start"),
        ({"tariffs__0__entries": "1"}, "tariffs[0].entries"),  # no coercion
        ({"tariffs__0__entries": True}, "tariffs[0].entries"),
        ({"tariffs__0__zones": ["facility", "spa"]}, "tariffs[0].zones: unknown zone 'spa'"),
        ({"zones__2__parent": "gym"}, "zones[2].parent: unknown zone 'gym'"),
        ({"zones__0__parent": "sauna"}, "zones[0].parent: zone 'facility' is inside itself"),
        ({"tariffs__1__stay__facility__rate__prices": {"child": 300}}, "an 'adult' price"),
        ({"tariffs__0__zones": ["pool"], "tariffs__0__stay": {}}, None),
        ({"tariffs__2__zones": ["facility"]}, "tariffs[2].stay.sauna: the tariff does not admit"),
        ({"tariffs__1__id": "single"}, "tariffs[1].id: duplicate tariff 'single'"),
        ({"tariffs__9__price": ...}, "tariffs[9].price: a pay_at_exit tariff needs a price"),
    ],
)
def test_bad_documents(changes, expected):
    doc = broken(**changes)
    if expected is None:
        parse_catalog(doc)
        return
    errors = errors_of(doc)
    assert any(expected in e for e in errors), errors


def test_leap_day_is_a_valid_date_in_2028():
    site = parse_catalog(broken(site__holidays=["2028-02-29"]))
    assert site.holidays == {date(2028, 2, 29)}
