"""The demo as a user runs it: `entrada demo`, then Ctrl-C."""

import json
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.scenario


def entrada(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "entrada.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def leftovers(workdir):
    out = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True)
    return out.stdout.split()


def test_headless_chaos_demo_ends_with_nothing_lost(tmp_path):
    proc = entrada(
        "demo",
        "--headless",
        "--chaos",
        "--duration",
        "15",
        "--rate",
        "30",
        "--json",
        "--seed",
        "7",
        "--workdir",
        str(tmp_path / "site"),
    )
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["taps"] > 300
    assert summary["events_lost"] == 0
    assert summary["events_duplicated"] == 0
    assert summary["events_stored"] == summary["events_emitted"] > 0
    assert summary["granted"] == summary["expected_granted"]
    assert summary["decisions_mismatched"] == 0
    # visitors have tariffs: overtime and bar tabs are settled at the exit
    assert summary["charges_total"] > 0
    assert summary["exits_refused_owing"] >= 0
    assert summary["chaos_events"] >= 1
    # the office: tickets issued (from leased numbers while central was away), called,
    # no number twice, every call confirmed by the board
    assert summary["tickets_issued"] == summary["tickets_pressed"] > 50
    assert summary["tickets_called"] > 0
    assert summary["duplicate_numbers"] == 0
    assert summary["calls_unconfirmed"] == 0
    assert leftovers(tmp_path / "site") == []


def test_ctrl_c_stops_the_whole_site(tmp_path):
    workdir = tmp_path / "site"
    proc = entrada("demo", "--duration", "120", "--workdir", str(workdir))
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "taps=" in line or time.monotonic() > deadline:
            break
    assert leftovers(workdir), "the site should be running"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert leftovers(workdir) == []
