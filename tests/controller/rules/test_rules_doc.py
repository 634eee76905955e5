"""docs/rules.md shows the tests' catalog, code that runs, and a simulation as it prints."""

import json
import re
from pathlib import Path

from rules_site import CATALOG

from entrada.cli_rules import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_catalog_on_the_page_is_the_tests_catalog():
    (catalog,) = blocks("json")
    assert json.loads(catalog) == CATALOG


def test_the_python_on_the_page_runs():
    (catalog,) = blocks("json")
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), {"catalog": json.loads(catalog)})


def test_the_simulation_on_the_page_prints_what_the_page_shows(tmp_path, capsys):
    (catalog,) = blocks("json")
    (day,) = blocks("jsonl")
    (console,) = blocks("console")
    command, shown = console.split("\n", 1)
    rules, friday = command.split()[-2:]
    (tmp_path / rules).write_text(catalog, encoding="utf-8")
    (tmp_path / friday).write_text(day, encoding="utf-8")
    assert main(["rules", "simulate", str(tmp_path / rules), str(tmp_path / friday)]) == 0
    assert capsys.readouterr().out == shown
