"""docs/ generated from code must match the code."""

from pathlib import Path

from entrada.cli import render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_config_reference_is_current():
    on_disk = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert on_disk.strip() == render_reference().strip(), (
        "docs/config.md is stale: run `entrada config reference > docs/config.md`"
    )


def test_example_configs_are_valid():
    from central.service import load_central_config
    from controller.daemon import load_device_config

    for path in sorted((ROOT / "config").glob("*.toml")):
        if "central" in path.name:
            load_central_config(path)
        else:
            load_device_config(path)
