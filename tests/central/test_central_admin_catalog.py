"""Admin of the whole catalog: wristband fields, rules, entitlements and the open tab."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from central import admin, admin_catalog
from central.sqlite_store import SqliteStorage
from entrada.errors import EntradaError
from entrada.protocol import EntitlementData, PaymentData, PostingData, TimeStopData

UID = "04A1B2C3D4E5F6"
RULES = {
    "site": {"id": "pool", "tz": "Europe/Warsaw", "currency": "PLN", "holidays": ["2028-05-03"]},
    "zones": [{"id": "facility"}, {"id": "pool", "parent": "facility"}],
    "tariffs": [
        {"id": "day", "zones": ["facility", "pool"], "price": {"prices": {"adult": 3500}}},
        {
            "id": "timed",
            "zones": ["facility"],
            "entry_windows": [{"days": ["sat", "sun", "hol"], "start": "08:00", "end": "20:00"}],
            "stay": {"facility": {"rate": {"prices": {"adult": 500}}, "included_minutes": 120}},
            "time_stop_minutes": 10,
        },
    ],
}
RULES_TOML = """
[site]
id = "pool"
tz = "Europe/Warsaw"
currency = "PLN"
holidays = [2028-05-03]

[[zones]]
id = "facility"

[[zones]]
id = "pool"
parent = "facility"

[[tariffs]]
id = "day"
zones = ["facility", "pool"]
price = { prices = { adult = 3500 } }

[[tariffs]]
id = "timed"
zones = ["facility"]
entry_windows = [{ days = ["sat", "sun", "hol"], start = 08:00:00, end = "20:00" }]
time_stop_minutes = 10
stay.facility = { rate = { prices = { adult = 500 } }, included_minutes = 120 }
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite"


@pytest.fixture
def site(db: Path) -> Path:
    """A store with the rules and one secure wristband with a 50.00 tab limit."""
    admin_catalog.publish_rules(db, RULES, now=1.0)
    admin.update_wristbands(db, [UID], {"holder": "Ann", "tab_limit_minor": 5000}, now=1.0)
    return db


def row(db: Path, entity: str, key: str):
    with SqliteStorage(db, readonly=True) as s:
        return s.catalog_row(entity, key)


# ------------------------------------------------------------------ wristbands


def test_update_keeps_the_fields_not_given(db):
    admin.set_wristbands(db, [(UID, "active", "Ann", None, "secure", 500, 2000)])
    head = admin.update_wristbands(db, [UID.lower(), "DEADBEEF"], {"status": "blocked"})

    with SqliteStorage(db, readonly=True) as s:
        assert s.wristband(UID)[1:] == ("blocked", "Ann", None, "secure", 500, 2000)
        assert s.wristband("DEADBEEF")[1:] == ("blocked", None, None, "secure", 0, None)
    assert head == 3
    assert admin.update_wristbands(db, [UID], {"holder": "", "tab_limit_minor": None}) == 4
    assert row(db, "wristband", UID).holder is None


def test_update_lists_every_problem(db):
    with pytest.raises(admin.CatalogInputError) as err:
        admin.update_wristbands(db, ["xyz", UID], {"assurance": "paper", "colour": "red"})
    assert len(err.value.errors) == 1 and "colour" in err.value.errors[0]
    with pytest.raises(admin.CatalogInputError) as err:
        admin.update_wristbands(db, ["xyz", UID], {"assurance": "paper"})
    assert len(err.value.errors) == 2
    assert admin.catalog_head(db) == 0


def test_csv_extra_columns_and_absent_ones_kept(db):
    admin.import_wristbands_csv(
        db,
        io.StringIO(
            "uid,holder,assurance,deposit_minor,tab_limit_minor\n"
            f"{UID},Ann,uid_only,500,\nDEADBEEF,,,,3000\n"
        ),
    )
    head = admin.import_wristbands_csv(db, io.StringIO(f"uid,status\n{UID},blocked\n"))

    assert head == 3
    with SqliteStorage(db, readonly=True) as s:
        assert s.wristband(UID)[1:] == ("blocked", "Ann", None, "uid_only", 500, None)
        assert s.wristband("DEADBEEF").tab_limit_minor == 3000


def test_csv_amounts_are_whole_minor_units(db):
    text = f"uid,deposit_minor,tab_limit_minor\n{UID},5.00,\nDEADBEEF,,-1\nCAFEBABE,1e3,\n"
    with pytest.raises(admin.CatalogInputError) as err:
        admin.import_wristbands_csv(db, io.StringIO(text))
    assert [e.split(":")[0] for e in err.value.errors] == ["line 2", "line 3", "line 4"]


# ----------------------------------------------------------------------- rules


def test_publish_rules_from_json_and_toml(db, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES), encoding="utf-8")
    assert admin_catalog.publish_rules(db, path) == 1
    toml = tmp_path / "rules.toml"
    toml.write_text(RULES_TOML, encoding="utf-8")
    assert admin_catalog.publish_rules(db, toml) == 1  # the same document: nothing new

    with SqliteStorage(db, readonly=True) as s:
        assert s.rules_document() == (1, RULES)
        assert admin_catalog.current_site(s).tariffs["timed"].time_stop_minutes == 10


def test_bad_rules_list_every_error_and_write_nothing(db, tmp_path):
    doc = copy.deepcopy(RULES)
    doc["version"] = 3
    doc["site"]["currency"] = "zł"
    doc["tariffs"][1]["stay"]["facility"]["interval_minute"] = 5
    doc["tariffs"][1]["zones"] = ["facility", 7]
    with pytest.raises(admin_catalog.RulesDocumentError) as err:
        admin_catalog.publish_rules(db, doc)
    assert len(err.value.errors) == 1 and err.value.errors[0].startswith("version:")
    del doc["version"]
    with pytest.raises(admin_catalog.RulesDocumentError) as err:
        admin_catalog.publish_rules(db, doc)

    assert len(err.value.errors) == 3
    assert any("did you mean 'interval_minutes'" in e for e in err.value.errors)
    doc = copy.deepcopy(RULES)
    doc["tariffs"][0]["zones"] = ["spa"]
    doc["zones"][1]["parent"] = "gym"
    with pytest.raises(admin_catalog.RulesDocumentError) as err:
        admin_catalog.publish_rules(db, doc)
    assert len(err.value.errors) == 2
    assert admin.catalog_head(db) == 0


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("r.json", "{", "not valid .json"),
        ("r.json", "[1]", "must be an object"),
        ("r.json", '{"site": NaN}', "not valid"),
        ("r.toml", "a = ", "not valid .toml"),
        ("r.toml", "[site]\nx = 2028-05-03T10:00:00Z", "site.x: a date-time"),
        ("r.toml", "[site]\nx = 10:00:30", "site.x: times are 'HH:MM'"),
        ("missing.json", None, "cannot read"),
    ],
)
def test_unreadable_rules(db, tmp_path, name, text, expected):
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(admin_catalog.RulesDocumentError, match=expected):
        admin_catalog.publish_rules(db, path)


# ---------------------------------------------------------------- entitlements


def test_entitle_checks_the_tariff_and_keeps_usage(site):
    key, head = admin_catalog.entitle(site, UID, "day", entitlement_id="t-1", valid_to="2028-12-31")
    assert (key, head) == ("t-1", 3)
    with SqliteStorage(site) as s:  # a device reported usage, recorded by central
        used = s.catalog_row("entitlement", "t-1").model_copy(update={"entries_used": 4})
        s.catalog_apply([("entitlement", "t-1", used)], 2.0)
    admin_catalog.entitle(site, UID, "timed", entitlement_id="t-1", concession="child")

    assert row(site, "entitlement", "t-1") == EntitlementData(
        uid=UID, tariff_id="timed", concession="child", entries_used=4
    )
    fresh, _ = admin_catalog.entitle(site, UID, "day")
    assert fresh.startswith("cli:")
    with pytest.raises(admin.CatalogInputError, match="not in the current rules"):
        admin_catalog.entitle(site, UID, "season")
    with pytest.raises(admin.CatalogInputError, match="after valid_to"):
        admin_catalog.entitle(site, UID, "day", valid_from="2028-02-01", valid_to="2028-01-01")


def test_entitle_without_rules(db):
    with pytest.raises(EntradaError, match="no rules published"):
        admin_catalog.entitle(db, UID, "day")


def test_import_entitlements(site):
    text = (
        "ID,uid,tariff_id,concession,valid_from,valid_to\n"
        f"e1,{UID},day,,2028-01-01,2028-01-31\n"
        "e2,de:ad:be:ef,timed,child,,\n"
    )
    head = admin_catalog.import_entitlements_csv(site, io.StringIO(text))
    assert admin_catalog.import_entitlements_csv(site, io.StringIO(text)) == head == 4
    assert row(site, "entitlement", "e2") == EntitlementData(
        uid="DEADBEEF", tariff_id="timed", concession="child"
    )


def test_import_entitlements_lists_every_bad_line(site):
    text = (
        "id,uid,tariff_id,concession,valid_from,valid_to\n"
        f"e1,{UID},day,,,\n"
        f"e2,{UID},season,,,\n"  # unknown tariff
        "e3,xyz,day,,,\n"  # bad uid
        f"e 4,{UID},day,,,\n"  # bad id
        f"e5,{UID},day,teen,2028-02-30,\n"  # two bad fields
        f"e1,{UID},day,,,\n"  # same id again
        f"e6,{UID},day,,,,\n"  # too many values
    )
    with pytest.raises(admin.CatalogInputError) as err:
        admin_catalog.import_entitlements_csv(site, io.StringIO(text))

    assert [e.split(":")[0] for e in err.value.errors] == [f"line {n}" for n in range(3, 9)]
    assert "concession" in err.value.errors[3] and "valid_from" in err.value.errors[3]
    assert admin.catalog_head(site) == 2


def test_import_entitlements_bad_header(site):
    with pytest.raises(admin.CatalogInputError, match="header"):
        admin_catalog.import_entitlements_csv(site, io.StringIO("uid,tariff_id\nX,day\n"))


# ------------------------------------------------------------------------- tab


def test_post_pay_and_retry(site):
    first = admin_catalog.post_to_tab(site, UID, 1250, ref="bar:1", description="cola", now=100.0)
    again = admin_catalog.post_to_tab(site, UID, 1250, ref="bar:1", description="cola", now=160.0)
    paid = admin_catalog.pay_tab(site, UID, 1000, method="card", now=200.0)

    assert (first.head, first.owed_minor, first.duplicate) == (3, 1250, False)
    assert (again.head, again.duplicate) == (3, True)
    assert paid.ref.startswith("cli:") and (paid.head, paid.owed_minor) == (4, 250)
    assert row(site, "posting", "bar:1") == PostingData(
        uid=UID, amount_minor=1250, description="cola", ts=100.0
    )
    assert row(site, "payment", paid.ref) == PaymentData(
        uid=UID, amount_minor=1000, method="card", ts=200.0
    )
    with pytest.raises(admin.CatalogInputError, match="already a different posting"):
        admin_catalog.post_to_tab(site, UID, 99, ref="bar:1")


def test_posting_over_the_limit_is_refused(site):
    admin_catalog.post_to_tab(site, UID, 4000)
    with pytest.raises(admin_catalog.TabRefused) as err:
        admin_catalog.post_to_tab(site, UID, 1001)
    assert err.value.code == "denied.tab_limit"
    admin_catalog.pay_tab(site, UID, 1000)
    assert admin_catalog.post_to_tab(site, UID, 1001).owed_minor == 4001


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"assurance": "uid_only"}, "denied.low_assurance"),
        ({"status": "blocked"}, "denied.blocked"),
    ],
)
def test_posting_to_media_that_cannot_carry_a_tab(site, fields, code):
    admin.update_wristbands(site, [UID], fields)
    with pytest.raises(admin_catalog.TabRefused) as err:
        admin_catalog.post_to_tab(site, UID, 100)
    assert err.value.code == code
    with pytest.raises(admin_catalog.TabRefused, match=r"denied\.unknown"):
        admin_catalog.post_to_tab(site, "DEADBEEF", 100)
    assert admin.catalog_head(site) == 3


@pytest.mark.parametrize("amount", [0, -5, True, 2.5])
def test_amounts_are_positive_integers(site, amount):
    with pytest.raises(admin.CatalogInputError, match="positive whole number"):
        admin_catalog.post_to_tab(site, UID, amount)
    with pytest.raises(admin.CatalogInputError, match="positive whole number"):
        admin_catalog.pay_tab(site, UID, amount)


def test_time_stop(site):
    entry = admin_catalog.stop_time(site, UID, at=1234.5, ref="kiosk:7", now=1240.0)
    assert admin_catalog.stop_time(site, UID, ref="kiosk:7").duplicate
    assert row(site, "timestop", "kiosk:7") == TimeStopData(uid=UID, at=1234.5)
    assert entry.head == 3
    with pytest.raises(admin.CatalogInputError, match="not in the catalog"):
        admin_catalog.stop_time(site, "DEADBEEF")
