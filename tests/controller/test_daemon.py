"""`entrada device` start-up: bad configs and missing hardware end cleanly with a reason."""

import logging
import signal
import subprocess
import sys
import time

import pytest

from controller.daemon import EXIT_DRIVERS, run_device
from entrada.broker import free_port
from entrada.cli import EXIT_CONFIG
from entrada.cli import main as entrada_main

GOOD = """
[device]
id = "gate-1"
site = "pool"
role = "gate"
data_dir = "{tmp}/data"
run_dir = "{tmp}/run"
[mqtt]
port = {port}
[drivers]
rfid = "{rfid}"
relay = "sim"
indicator = "sim"
"""


@pytest.fixture(autouse=True)
def restore_logging():
    """run_device configures the root logger for a daemon; give pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def write(tmp_path, text):
    path = tmp_path / "device.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[device\nid = 1", "not valid TOML"),
        (b"\xff\xfe[device]", "not UTF-8"),
        (
            "[device]\nid='g'\nsite='s'\nrole='gate'\n[drivers]\nrfid='sim'\nrelay='sim'\n"
            "indicator='sim'\n[gate]\ndebunce=2",
            "did you mean 'debounce'",
        ),
        ("[device]\nid='g'\nsite='s'\nrole='kiosk'\n", "drivers: Field required"),
    ],
)
def test_bad_config_exits_2_listing_the_problem(tmp_path, capsys, text, expected):
    assert entrada_main(["device", "--config", write(tmp_path, text)]) == EXIT_CONFIG
    assert expected in capsys.readouterr().err


def test_every_config_error_is_listed_at_once(tmp_path, capsys):
    text = "[device]\nid='g'\nsite='s'\nrole='door'\n[mqtt]\nport=0\n[outbox]\nbatch_size=0\n"
    assert entrada_main(["device", "--config", write(tmp_path, text)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    for fragment in ("device.role", "mqtt.port", "outbox.batch_size", "drivers"):
        assert fragment in err


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert entrada_main(["device", "--config", str(tmp_path / "nope.toml")]) == EXIT_CONFIG
    assert "cannot read config" in capsys.readouterr().err


def test_unavailable_gpio_backend_stops_start_up_and_is_never_simulated(tmp_path, capfd):
    text = (
        GOOD.format(tmp=tmp_path, port=free_port(), rfid="sim").replace(
            'relay = "sim"', 'relay = "gpio"'
        )
        + "[drivers.gpio]\npin_factory = 'lgpio'\n"
    )
    assert run_device(write(tmp_path, text)) == EXIT_DRIVERS
    assert "pin factory 'lgpio' is unavailable" in capfd.readouterr().err


def test_daemon_stops_cleanly_on_sigterm(tmp_path):
    path = write(tmp_path, GOOD.format(tmp=tmp_path, port=free_port(), rfid="sim"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrada.cli", "device", "--config", path],
        stderr=subprocess.PIPE,
        text=True,
    )
    sock = tmp_path / "run" / "sim" / "gate-1.sock"
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock.exists()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "device gate-1 stopped" in err
    assert not sock.exists()
