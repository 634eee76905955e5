"""A technician changes a gate's config through central, end to end: a real Mosquitto, the
real central service (in process, with the site's signing key), a gate on simulated
drivers run by the supervisor (on a thread), and the technician's own commands
(``entrada tech config set``, ``entrada tech devices``, ``entrada tech cmd``) called as
the CLI calls them. Central signs and publishes each new version retained; the gate
applies it, refuses it or rolls it back, and says so; ``tech devices`` shows it. A gate
that was off when its config changed takes the new version when it comes back. Neither
the gate's password nor central's ever reaches a log line or the technician's screen."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from config_rig import SITE, on_broker, supervised, write_gate_config

from central.devconfig import ConfigState, DesiredConfigs, config_states
from central.service import CentralService, db_path, load_central_config
from controller.config_apply import ConfigCode
from controller.supervisor import Supervisor
from entrada import cli_tech, cli_techconfig, signing
from entrada.broker import PrivateBroker
from entrada.site import wait_until

pytestmark = pytest.mark.scenario

TIMEOUT = 20.0
GATE_SECRET = "hunter2-gate-mqtt-secret"
CENTRAL_SECRET = "hunter2-central-mqtt-secret"
MISSING_PORT = "/dev/entrada-no-such-reader"


class Fleet:
    """The site: broker, central with its config file, and one gate that can be started
    and stopped."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        private, self.public_key = signing.generate_keypair(tmp_path / "keys")
        self.central_config = tmp_path / "central.toml"
        self.central_config.write_text(
            tomli_w.dumps(
                {
                    "central": {
                        "site": SITE,
                        "data_dir": str(tmp_path / "central"),
                        "signing_key": str(private),
                    },
                    "mqtt": {
                        "host": broker.host,
                        "port": broker.port,
                        "password": CENTRAL_SECRET,
                        "reconnect_min": 0.05,
                        "reconnect_max": 0.5,
                    },
                    "ingest": {"batch_window": 0.01},
                }
            )
        )
        self.central = CentralService(load_central_config(self.central_config))
        self.central.start()
        assert self.central.wait_ready(TIMEOUT)
        self.db = db_path(self.central.cfg)

    @contextmanager
    def gate(self) -> Iterator[Supervisor]:
        config = write_gate_config(self.tmp_path, self.broker.port, GATE_SECRET, self.public_key)
        sup = Supervisor(config, self_check_seconds=0.5)
        with supervised(sup, self.online, TIMEOUT):
            yield sup

    def online(self, sup: Supervisor) -> bool:
        """The gate's current runtime is connected."""
        return wait_until(lambda: sup.runtime is not None and sup.runtime.online, TIMEOUT)

    def state(self) -> ConfigState | None:
        return {s.device: s for s in config_states(self.db)}.get("gate-1")

    def settles(self, desired: int, state: str) -> ConfigState:
        """Central's view of gate-1 reaches version ``desired`` in ``state``."""

        def there() -> bool:
            s = self.state()
            return s is not None and (s.desired_version, s.state) == (desired, state)

        assert wait_until(there, TIMEOUT), f"gate-1 is {self.state()}"
        s = self.state()
        assert s is not None
        return s

    def published(self) -> bool:
        with DesiredConfigs(self.db, readonly=True) as configs:
            return configs.unpublished() == []

    def close(self) -> None:
        self.central.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with on_broker(tmp_path, Fleet) as f:
        yield f


def tech(capsys: Any, main: Any, *argv: str) -> tuple[int, str, str]:
    code = main(["tech", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def config_set(capsys: Any, fleet: Fleet, base: int, *pairs: str) -> tuple[int, str, str]:
    return tech(
        capsys,
        cli_techconfig.main,
        "config",
        "set",
        "gate-1",
        *pairs,
        "--base",
        str(base),
        "--config",
        str(fleet.central_config),
    )


def devices(capsys: Any, fleet: Fleet) -> list[str]:
    code, out, _ = tech(capsys, cli_tech.main, "devices", "--config", str(fleet.central_config))
    assert code == 0
    return out.splitlines()


def test_a_technician_changes_a_gate_through_central(fleet, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    screens: list[str] = []

    with fleet.gate() as sup:
        fleet.settles(1, "applied")  # central met the gate and gave it version 1

        code, out, err = config_set(capsys, fleet, 1, "gate.relay_pulse=0.7")
        screens += [out, err]
        assert (code, out.strip()) == (0, "gate-1: config version 2")
        fleet.settles(2, "applied")
        assert wait_until(lambda: sup.generation == 2, TIMEOUT)

        (_, row) = screens_of(devices(capsys, fleet), screens)
        words = row.split()
        assert words[:3] + words[4:6] == ["gate-1", "gate", "online", "2/2", "applied"]

        code, _, err = config_set(capsys, fleet, 1, "gate.relay_pulse=0.9")  # stale base
        screens.append(err)
        assert code == 1
        assert "refused" in err and "version 2" in err
        assert fleet.state().desired_version == 2  # type: ignore[union-attr]

        code, out, err = config_set(
            capsys, fleet, 2, "drivers.rfid=serial", f"drivers.serial.port={MISSING_PORT}"
        )
        screens += [out, err]
        assert code == 0
        rolled = fleet.settles(3, "rolled_back")
        assert (rolled.applied_version, rolled.code) == (2, ConfigCode.ROLLED_BACK_SELF_CHECK)
        _header, row, why = screens_of(devices(capsys, fleet), screens)
        assert row.split()[4:6] == ["2/3", "rolled_back"]
        assert why.split()[:4] == ["config", "version", "3", "rolled_back"]
        assert why.endswith(
            f"[{ConfigCode.ROLLED_BACK_SELF_CHECK}]: the serial reader did not start"
        )
        assert wait_until(lambda: sup.runtime is not None and sup.runtime.online, TIMEOUT)
        assert sup.runtime.cfg.gate.relay_pulse == 0.7  # type: ignore[union-attr]

    # the gate is off while its config changes; central publishes it retained anyway
    code, out, err = config_set(
        capsys, fleet, 3, "drivers.rfid=", "drivers.serial=", "gate.relay_pulse=0.4"
    )
    screens += [out, err]
    assert code == 0
    assert wait_until(fleet.published, TIMEOUT)
    assert fleet.state().state == "pending"  # type: ignore[union-attr]

    with fleet.gate() as sup:
        back = fleet.settles(4, "applied")
        assert back.applied_version == 4
        assert wait_until(lambda: sup.generation == 2, TIMEOUT)
        code, out, err = tech(
            capsys,
            cli_tech.main,
            "cmd",
            "gate-1",
            "open-gate",
            "--config",
            str(fleet.central_config),
        )
        screens += [out, err]
        assert code == 0 and "seconds: 0.4" in out
        # borrowing central's account is allowed, but the technician is told not to
        assert "--account" in err
        (_, row) = screens_of(devices(capsys, fleet), screens)
        assert row.split()[4:6] == ["4/4", "applied"]

    for secret in (GATE_SECRET, CENTRAL_SECRET):
        assert secret not in caplog.text
        assert not any(secret in screen for screen in screens)


def screens_of(lines: list[str], screens: list[str]) -> list[str]:
    """``lines`` as they were shown (kept for the secrets check)."""
    screens.extend(lines)
    return lines


def test_a_technicians_own_account_is_used_and_central_is_not_warned_about(fleet, capsys, tmp_path):
    account = tmp_path / "services" / "tech-anna" / "mqtt.toml"
    account.parent.mkdir(parents=True)
    account.write_text(
        tomli_w.dumps(
            {
                "mqtt": {
                    "host": fleet.broker.host,
                    "port": fleet.broker.port,
                    "username": "tech-anna",
                    "password": "anna-secret",
                }
            }
        )
    )

    with fleet.gate():
        code, out, err = tech(
            capsys,
            cli_tech.main,
            "cmd",
            "gate-1",
            "identify",
            "--config",
            str(fleet.central_config),
            "--account",
            str(account),
        )

    assert code == 0 and out.startswith("gate-1 identify: ok")
    assert err == ""
    assert fleet.central.connected  # central kept its connection all along
