"""``entrada wristband history`` and ``entrada conflicts`` on a central store."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from central.replay import Replayer
from entrada.cli_history import main


def _rig_module() -> ModuleType:
    """tests/central/history_rig.py (it builds the store with the real engine)."""
    if "history_rig" in sys.modules:
        return sys.modules["history_rig"]
    path = Path(__file__).parents[1] / "central" / "history_rig.py"
    spec = importlib.util.spec_from_file_location("history_rig", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["history_rig"] = module
    spec.loader.exec_module(module)
    return module


rigs = _rig_module()
UID, OTHER, T0 = rigs.UID, rigs.OTHER, rigs.T0


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    data_dir = tmp_path / "central"
    data_dir.mkdir()
    rig = rigs.Rig(data_dir / "central.sqlite")
    rig.wristband(UID, holder="Ada", deposit_minor=500)
    rig.entitlement("ent-spa", "spa")
    rig.tap("entrance", T0)
    rig.posting("bar-1", 450, T0 + 600, text="Lemonade")
    rig.payment("pay-1", 450, T0 + 1200)
    rig.tap("exit", T0 + 1800, offline=3.0)
    rig.close()
    path = tmp_path / "central.toml"
    path.write_text(f'[central]\nsite = "test"\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    yield path


def add_conflict(config: Path) -> None:
    """Another wristband denied offline on an online-only ticket, then the replay."""
    rig = rigs.Rig(config.parent / "central" / "central.sqlite")
    rig.wristband(OTHER)
    rig.entitlement("ent-o", "strict", uid=OTHER)
    rig.tap("entrance", T0 + 7200, OTHER, offline=5.0)
    Replayer(settle_seconds=0).run_once(rig.store, T0 + 86400)
    rig.close()


def test_history_as_text(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wristband", "history", UID.lower(), "--config", str(config)]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wristband {UID}: active, secure, holder Ada, deposit 5.00 EUR"
    assert "entitlement ent-spa: Spa (adult), 1 entries used" in out[1]
    assert "times in Europe/Warsaw" in out
    entry = next(line for line in out if " entry " in line)
    assert entry.startswith("2027-06-01 12:00:00") and "outside -> facility" in entry
    assert "Welcome" in entry
    posting = next(line for line in out if " posting " in line)
    assert "4.50 EUR" in posting and "Lemonade" in posting
    exit_ = next(line for line in out if " exit " in line)
    assert exit_.endswith("offline")
    assert out[-1].startswith("totals: charged 0.00 EUR, posted 4.50 EUR, paid 4.50 EUR")


def test_history_as_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wristband", "history", UID, "--config", str(config), "--json"]) == 0

    doc = json.loads(capsys.readouterr().out)
    assert doc["uid"] == UID
    assert [i["kind"] for i in doc["items"]][:3] == ["entry", "posting", "payment"]
    assert doc["totals"]["refunded_minor"] == 500


@pytest.mark.parametrize(("uid", "code"), [("04FFFFFF", 1), ("xyz", 2)])
def test_history_of_nothing(
    config: Path, capsys: pytest.CaptureFixture[str], uid: str, code: int
) -> None:
    assert main(["wristband", "history", uid, "--config", str(config)]) == code
    assert capsys.readouterr().err.startswith("entrada: ")


def test_no_conflicts_before_the_replay(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conflicts", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "no conflicts\n"


def test_conflicts_as_text_and_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_conflict(config)

    assert main(["conflicts", "--config", str(config)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert main(["conflicts", "--config", str(config), "--json", "--since", "2027-06-01"]) == 0
    doc = json.loads(capsys.readouterr().out)

    assert text == [
        "times in Europe/Warsaw",
        f"2027-06-01 14:00:00  entrance     {OTHER:<20} "
        "denied offline (denied.offline), would have been admitted: granted (Welcome)",
    ]
    assert [c["conflict"] for c in doc["conflicts"]] == ["denied_offline_would_admit"]
    assert doc["conflicts"][0]["uid"] == OTHER
    assert main(["conflicts", "--config", str(config), "--since", "2027-06-02"]) == 0
    assert capsys.readouterr().out == "no conflicts\n"


def test_a_missing_config_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conflicts", "--config", str(tmp_path / "none.toml")]) == 2
