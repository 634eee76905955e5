"""docs/rules-engine-draft.md shows the tests' catalog and code that runs."""

import json
import re
from pathlib import Path

from rules_site import CATALOG

DOC = Path(__file__).resolve().parents[3] / "docs" / "rules-engine-draft.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_catalog_on_the_page_is_the_tests_catalog():
    (catalog,) = blocks("json")
    assert json.loads(catalog) == CATALOG


def test_the_python_on_the_page_runs():
    (catalog,) = blocks("json")
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), {"catalog": json.loads(catalog)})
