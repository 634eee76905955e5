"""What the scenarios of a gate's signed config share (test_scenario_config_apply.py and
test_scenario_fleet.py): a private Mosquitto with the scenario's rig on it, the gate's
device.toml, and its supervisor run on a thread (signals are only installed by
``entrada device``) for the length of a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import tomli_w

from controller.supervisor import Supervisor
from entrada.broker import PrivateBroker

SITE = "t"


class _Closing(Protocol):
    def close(self) -> None: ...


R = TypeVar("R", bound=_Closing)


@contextmanager
def on_broker(tmp_path: Path, make: Callable[[Path, PrivateBroker], R]) -> Iterator[R]:
    """``make(tmp_path, broker)`` on a private broker; closed before the broker stops."""
    with PrivateBroker(tmp_path) as broker:
        made = make(tmp_path, broker)
        try:
            yield made
        finally:
            made.close()


def write_gate_config(root: Path, port: int, password: str, config_key: Path) -> Path:
    """``root/device.toml``: gate-1 on simulated drivers (a 0.2 s relay pulse), its data
    under ``root``, taking only configs that ``config_key`` verifies."""
    path = root / "device.toml"
    doc = {
        "device": {
            "id": "gate-1",
            "site": SITE,
            "role": "gate",
            "data_dir": str(root / "gate"),
            "run_dir": str(root / "run"),
            "config_key": str(config_key),
        },
        "mqtt": {
            "port": port,
            "password": password,
            "reconnect_min": 0.05,
            "reconnect_max": 0.5,
        },
        "gate": {"relay_pulse": 0.2},
        "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim"},
    }
    path.write_text(tomli_w.dumps(doc))
    return path


@contextmanager
def supervised(
    sup: Supervisor, up: Callable[[Supervisor], bool], timeout: float
) -> Iterator[Supervisor]:
    """Run ``sup`` on a thread; ``up(sup)`` must say it came online. At the end it is
    stopped and joined, and whatever its run raised fails the test."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sup.run()
        except BaseException as err:  # reported by the test thread
            errors.append(err)

    thread = threading.Thread(target=run, name="supervisor")
    thread.start()
    try:
        assert up(sup), "the device did not come online"
        yield sup
    finally:
        sup.request_stop("test over")
        thread.join(timeout)
        assert not thread.is_alive()
    assert errors == []
