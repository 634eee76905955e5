"""``entrada catalog ...`` and ``entrada tab ...`` against a central store file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.sqlite_store import SqliteStorage
from entrada.cli import EXIT_CONFIG, main

UID = "04A1B2C3D4E5F6"
RULES = {
    "site": {"id": "pool", "tz": "Europe/Warsaw", "currency": "PLN"},
    "zones": [{"id": "facility"}],
    "tariffs": [{"id": "day", "zones": ["facility"], "price": {"prices": {"adult": 3500}}}],
}


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "central.toml"
    path.write_text(
        f'[central]\nsite = "pool"\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8"
    )
    return str(path)


@pytest.fixture
def store(tmp_path: Path):
    def open_() -> SqliteStorage:
        return SqliteStorage(tmp_path / "data" / "central.sqlite", readonly=True)

    return open_


@pytest.fixture
def run(cfg, capsys):
    def run_(*argv: str) -> tuple[int, str, str]:
        code = main([argv[0], "--config", cfg, *argv[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    return run_


@pytest.fixture
def rules_file(tmp_path: Path) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES), encoding="utf-8")
    return str(path)


def test_catalog_set_with_the_new_fields(run, store):
    assert run("catalog", "set", UID, "de:ad:be:ef", "--holder", "Ann", "--deposit", "500")[0] == 0
    code, out, _ = run("catalog", "set", UID, "--assurance", "uid_only", "--tab-limit", "2000")

    assert (code, out) == (0, "catalog version 3\n")
    with store() as s:
        assert s.wristband(UID)[1:] == ("active", "Ann", None, "uid_only", 500, 2000)
        assert s.wristband("DEADBEEF").deposit_minor == 500
    assert run("catalog", "set", UID, "--tab-limit", "none", "--status", "lost")[0] == 0
    with store() as s:
        assert (s.wristband(UID).status, s.wristband(UID).tab_limit_minor) == ("lost", None)


@pytest.mark.parametrize("amount", ["12.50", "-1", "1e3", "abc"])
def test_amounts_must_be_whole_minor_units(run, amount):
    with pytest.raises(SystemExit) as exc:
        run("catalog", "set", UID, "--deposit", amount)
    assert exc.value.code == 2


def test_catalog_import(run, tmp_path, store):
    path = tmp_path / "bands.csv"
    path.write_text(f"uid,holder,deposit_minor\n{UID},Ann,500\n", encoding="utf-8")
    assert run("catalog", "import", str(path)) == (0, "catalog version 1\n", "")
    path.write_text("uid,holder\nxyz,Bob\n", encoding="utf-8")
    code, _, err = run("catalog", "import", str(path))
    assert code == 1 and "line 2" in err


def test_catalog_rules(run, rules_file, tmp_path, store):
    assert run("catalog", "rules", rules_file) == (0, "catalog version 1\n", "")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**RULES, "site": {"id": "pool", "tz": "Mars/Base"}}), "utf-8")

    code, out, err = run("catalog", "rules", str(bad))

    assert (code, out) == (EXIT_CONFIG, "")
    assert "site.tz" in err and "site.currency" in err
    with store() as s:
        assert s.catalog_head() == 1 and s.rules_document() == (1, RULES)


def test_catalog_entitle_and_entitlements(run, rules_file, tmp_path, store):
    run("catalog", "rules", rules_file)
    code, out, _ = run(
        "catalog",
        "entitle",
        UID,
        "day",
        "--id",
        "e-1",
        "--from",
        "2028-01-01",
        "--to",
        "2028-01-02",
    )
    assert (code, out) == (0, "entitlement e-1\ncatalog version 2\n")
    code, _, err = run("catalog", "entitle", UID, "season")
    assert code == 1 and "'season' is not in the current rules" in err

    path = tmp_path / "ents.csv"
    path.write_text(f"id,uid,tariff_id\ne-2,{UID},day\ne-3,{UID},week\n", encoding="utf-8")
    code, _, err = run("catalog", "entitlements", str(path))
    assert code == 1 and "line 3" in err and "line 2" not in err
    path.write_text(f"id,uid,tariff_id\ne-2,{UID},day\n", encoding="utf-8")
    assert run("catalog", "entitlements", str(path))[:2] == (0, "catalog version 3\n")
    with store() as s:
        assert [k for _, k, _, _ in s.catalog_rows_for_uid(UID)] == ["e-1", "e-2"]


def test_tab_commands(run, rules_file, store):
    run("catalog", "rules", rules_file)
    run("catalog", "set", UID, "--tab-limit", "3000")

    code, out, _ = run("tab", "post", UID, "2500", "--ref", "bar:1", "--description", "cola")
    assert (code, out) == (0, "post bar:1; tab owes 2500; catalog version 3\n")
    code, out, err = run("tab", "post", UID, "600")
    assert (code, out) == (1, "")
    assert err.startswith("refused [denied.tab_limit]: ")
    code, out, _ = run("tab", "pay", UID, "2500", "--method", "cash")
    assert code == 0 and out.startswith("pay cli:") and "tab owes 0" in out
    assert run("tab", "timestop", UID, "--at", "1700000000", "--ref", "k:1")[1] == (
        "timestop k:1; catalog version 5\n"
    )
    run("catalog", "set", UID, "--assurance", "uid_only")
    code, _, err = run("tab", "post", UID, "100")
    assert code == 1 and err.startswith("refused [denied.low_assurance]: ")
    with store() as s:
        assert s.catalog_row("timestop", "k:1").at == 1_700_000_000.0


def test_tab_post_without_rules(run):
    run("catalog", "set", UID)
    code, _, err = run("tab", "post", UID, "100")
    assert code == 1 and "no rules published" in err
