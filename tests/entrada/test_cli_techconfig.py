"""``entrada tech config get|set|edit|apply`` on a central store."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

from central.devconfig import DesiredConfigs
from central.service import DB_FILE
from entrada.cli_techconfig import main

T = 1_800_000_000.0


@pytest.fixture
def central(tmp_path: Path) -> Path:
    data_dir = tmp_path / "central"
    path = tmp_path / "central.toml"
    path.write_text(f'[central]\nsite = "test"\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    with DesiredConfigs(data_dir / DB_FILE) as configs:
        configs.add_device("gate-1", "gate", now=T)
        configs.add_device("gate-2", "gate", now=T)
        configs.set("gate-1", ["log.level=WARNING"], 1, "site", now=T)
    return path


def run(central: Path, *args: str) -> int:
    action, device, *rest = args
    return main(["tech", "config", action, device, "--config", str(central), *rest])


def stored(central: Path, device: str = "gate-1"):
    with DesiredConfigs(central.parent / "central" / DB_FILE) as configs:
        return configs.get(device)


def test_get_shows_keys_with_their_layers(central, capsys):
    run(central, "set", "gate-1", "gate.relay_pulse=2.5", "--base", "2")
    capsys.readouterr()

    assert run(central, "get", "gate-1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gate-1 (gate): desired version 3; applied -, pending"
    assert out[1].startswith("gate.relay_pulse = 2.5") and out[1].endswith("# device")
    assert out[2].startswith('log.level = "WARNING"') and out[2].endswith("# site")


def test_get_json(central, capsys):
    assert run(central, "get", "gate-2", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 2
    assert doc["document"] == {"log": {"level": "WARNING"}}
    assert doc["layers"] == {"site": {"log": {"level": "WARNING"}}, "role:gate": {}, "device": {}}
    assert doc["state"]["state"] == "pending"


def test_get_masks_secrets(central, capsys):
    with DesiredConfigs(central.parent / "central" / DB_FILE) as configs:
        # a document never holds the broker password (local-only); a secret-named key
        # of a future section must still never be printed
        configs._conn.execute(
            "UPDATE devcfg_devices SET document = ? WHERE device = 'gate-1'",
            (json.dumps({"printer": {"api_token": "t0p-secret"}}),),
        )
    assert run(central, "get", "gate-1") == 0
    assert run(central, "get", "gate-1", "--json") == 0
    out = capsys.readouterr().out
    assert "t0p-secret" not in out and "********" in out


def test_set_and_unset(central, capsys):
    assert (
        run(central, "set", "gate-1", "gate.debounce=3.0", "gate.relay_pulse=2", "--base", "2") == 0
    )
    assert capsys.readouterr().out == "gate-1: config version 3\n"
    assert stored(central)[1]["gate"] == {"debounce": 3.0, "relay_pulse": 2}

    assert run(central, "set", "gate-1", "gate.debounce=", "--base", "3") == 0
    assert stored(central)[1]["gate"] == {"relay_pulse": 2}


def test_set_on_an_old_version_is_refused(central, capsys):
    assert run(central, "set", "gate-1", "gate.debounce=3.0", "--base", "1") == 1
    err = capsys.readouterr().err
    assert "refused" in err and "version 2" in err
    assert stored(central)[0] == 2


def test_set_an_invalid_value(central, capsys):
    assert run(central, "set", "gate-1", "gate.relay_pulse=999", "--base", "2") == 2
    assert "gate.relay_pulse" in capsys.readouterr().err
    assert run(central, "set", "gate-1", "mqtt.host=evil", "--base", "2") == 2
    assert "only the device's own config file" in capsys.readouterr().err


def test_set_a_role_layer_reports_every_device(central, capsys):
    assert (
        run(central, "set", "gate-1", "gate.debounce=1.0", "--base", "2", "--layer", "role:gate")
        == 0
    )
    assert capsys.readouterr().out.splitlines() == ["gate-1: config version 3", "also: gate-2 3"]


def test_set_prints_warnings_the_device_will_check(central, capsys):
    assert run(central, "set", "gate-1", "gate.admission=tariffs", "--base", "2") == 0
    assert "warning: " in capsys.readouterr().err


def test_set_nothing(central, capsys):
    with pytest.raises(SystemExit):
        run(central, "set", "gate-1", "--base", "2")
    assert run(central, "set", "gate-1", "gate", "--base", "2") == 2
    assert "expected key.path=value" in capsys.readouterr().err


def test_bad_layer_name(central, capsys):
    with pytest.raises(SystemExit):
        run(central, "set", "gate-1", "a=1", "--base", "2", "--layer", "building")


def test_apply_replaces_the_layer(central, tmp_path: Path, capsys):
    run(central, "set", "gate-1", "gate.debounce=3.0", "--base", "2")
    file = tmp_path / "gate-1.toml"
    file.write_text("[gate]\nrelay_pulse = 1.5\n", encoding="utf-8")

    assert run(central, "apply", "gate-1", str(file), "--base", "3") == 0
    version, document, layers = stored(central)
    assert version == 4
    assert layers["device"] == {"gate": {"relay_pulse": 1.5}}
    assert document == {"gate": {"relay_pulse": 1.5}, "log": {"level": "WARNING"}}

    assert run(central, "apply", "gate-1", str(file), "--base", "3") == 1  # stale base


def test_apply_an_unreadable_file(central, tmp_path: Path, capsys):
    file = tmp_path / "bad.toml"
    file.write_text("[gate\n", encoding="utf-8")
    assert run(central, "apply", "gate-1", str(file), "--base", "2") == 2
    assert "cannot read" in capsys.readouterr().err


def _editor(tmp_path: Path, monkeypatch, body: str) -> None:
    """$EDITOR: a Python script that rewrites the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "text = p.read_text()\n"
        f"pathlib.Path({str(tmp_path / 'seen.toml')!r}).write_text(text)\n" + body,
        encoding="utf-8",
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")


def test_edit_sets_with_the_version_read_before(central, tmp_path: Path, monkeypatch, capsys):
    run(central, "set", "gate-1", "gate.debounce=3.0", "--base", "2")
    _editor(tmp_path, monkeypatch, "p.write_text(text.replace('3.0', '4.0'))\n")

    assert run(central, "edit", "gate-1") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "gate-1: config version 4"
    assert stored(central)[1]["gate"] == {"debounce": 4.0}
    text = (tmp_path / "seen.toml").read_text()
    assert "on version 3" in text and '#   log.level = "WARNING"  # site' in text
    assert not list(tmp_path.glob("entrada-*.toml"))  # removed once stored


def test_edit_without_change(central, tmp_path: Path, monkeypatch, capsys):
    _editor(tmp_path, monkeypatch, "")
    assert run(central, "edit", "gate-1") == 0
    assert "no change" in capsys.readouterr().out
    assert stored(central)[0] == 2


def test_edit_that_is_invalid_keeps_the_file(central, tmp_path: Path, monkeypatch, capsys):
    _editor(tmp_path, monkeypatch, "p.write_text('[gate]\\nrelay_pulse = 999.0\\n')\n")
    assert run(central, "edit", "gate-1") == 2
    err = capsys.readouterr().err
    assert "gate.relay_pulse" in err and "your edit is kept in" in err
    kept = Path(err.split("your edit is kept in ")[1].split(";")[0])
    assert kept.read_text() == "[gate]\nrelay_pulse = 999.0\n"
    kept.unlink()
    assert stored(central)[0] == 2


def test_edit_keeps_masked_secrets(central, tmp_path: Path, monkeypatch, capsys):
    db = central.parent / "central" / DB_FILE
    with DesiredConfigs(db) as configs:
        configs._conn.execute(
            "INSERT INTO devcfg_layers (scope, document, updated_at) VALUES (?, ?, ?)",
            ("device:gate-1", json.dumps({"gate": {"debounce": 1.0}, "x": {"token": "s3cr3t"}}), T),
        )
    _editor(
        tmp_path,
        monkeypatch,
        "assert 's3cr3t' not in text\np.write_text(text.replace('1.0', '2.0'))\n",
    )
    # the stored layer is not valid (x.token is no option), but the secret never shows
    assert run(central, "edit", "gate-1") == 2
    err = capsys.readouterr().err
    assert "s3cr3t" not in err
    kept = Path(err.split("your edit is kept in ")[1].split(";")[0])
    assert "s3cr3t" not in kept.read_text()
    kept.unlink()


def test_editor_failure_changes_nothing(central, tmp_path: Path, monkeypatch, capsys):
    _editor(tmp_path, monkeypatch, "sys.exit(3)\n")
    assert run(central, "edit", "gate-1") == 1
    assert "nothing changed" in capsys.readouterr().err


def test_unknown_device(central, capsys):
    assert run(central, "get", "gate-9") == 1
    assert "gate-9" in capsys.readouterr().err
