"""A whole simulated site in processes: a private Mosquitto, the central service and
gates on simulated hardware, each a real daemon started as ``entrada ...``.

The demo, the scenario tests and the benchmarks use it. It can SIGKILL and restart the
broker and central to rehearse outages, feeds taps through each gate's simulator
channel, and reads results straight from the daemons' SQLite files (read-only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import tomli_w

from controller.simchannel import SimClient
from entrada.broker import PrivateBroker
from entrada.errors import EntradaError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateSpec:
    id: str
    direction: str = "in"
    #: ``[drivers] rotation``: "none" (a grant is a passage) or "sim" (turned by
    #: :meth:`Site.rotate`, or by itself ``auto_rotate`` seconds after each relay pulse).
    rotation: str = "none"
    auto_rotate: float | None = None
    rotation_timeout: float = 8.0
    #: ``[gate] admission``: "media" (the wristband's status only) or "tariffs".
    admission: str = "media"
    zone_from: str = ""
    zone_to: str = ""
    collects_media: bool = False
    #: ``[device] clock``: "sim" lets :meth:`Site.set_time` move the gate's wall time.
    clock: str = "system"


def _ro(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Site:
    def __init__(
        self,
        workdir: Path,
        gates: list[GateSpec],
        site_id: str = "demo",
        debounce: float = 2.0,
        relay_pulse: float = 0.5,
        log_level: str = "INFO",
    ) -> None:
        self.workdir = Path(workdir)
        self.site_id = site_id
        self.gates = gates
        self.debounce = debounce
        self.relay_pulse = relay_pulse
        self.log_level = log_level
        self.broker = PrivateBroker(self.workdir, persistence=True)
        self.run_dir = self.workdir / "run"
        self.log_dir = self.workdir / "logs"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._clients: dict[str, SimClient] = {}
        self.central_config = self.workdir / "central.toml"

    # ------------------------------------------------------------------ configs

    def central_db(self) -> Path:
        from central.service import db_path, load_central_config

        return db_path(load_central_config(self.central_config))

    def gate_db(self, gate_id: str) -> Path:
        return self.workdir / gate_id / "device.db"

    def gate_config(self, gate_id: str) -> Path:
        return self.workdir / f"{gate_id}.toml"

    def device_ids(self) -> list[str]:
        """Every device daemon of the site (stopped before central)."""
        return [g.id for g in self.gates]

    def write_configs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        mqtt = {"host": "127.0.0.1", "port": self.broker.port, "reconnect_max": 2.0}
        central = {
            "central": {"site": self.site_id, "data_dir": str(self.workdir / "central")},
            "mqtt": mqtt,
            "replay": {"settle": 1.0, "every": 0.5},
            "log": {"level": self.log_level},
        }
        central.update(self.central_extra())
        self.central_config.write_text(tomli_w.dumps(central))
        for g in self.gates:
            doc: dict[str, Any] = {
                "device": {
                    "id": g.id,
                    "site": self.site_id,
                    "role": "gate",
                    "data_dir": str(self.workdir / g.id),
                    "run_dir": str(self.run_dir),
                    "clock": g.clock,
                },
                "mqtt": mqtt,
                "outbox": {"ack_timeout": 2.0, "backoff_max": 5.0},
                "gate": {
                    "direction": g.direction,
                    "admission": g.admission,
                    "zone_from": g.zone_from,
                    "zone_to": g.zone_to,
                    "collects_media": g.collects_media,
                    "debounce": self.debounce,
                    "relay_pulse": self.relay_pulse,
                    "rotation_timeout": g.rotation_timeout,
                },
                "drivers": {
                    "rfid": "sim",
                    "relay": "sim",
                    "indicator": "sim",
                    "buttons": "sim",
                    "rotation": g.rotation,
                },
                "log": {"level": self.log_level},
            }
            if g.auto_rotate is not None:
                doc["drivers"]["sim"] = {"auto_rotate": g.auto_rotate}
            self.gate_config(g.id).write_text(tomli_w.dumps(doc))

    def central_extra(self) -> dict[str, Any]:
        """More sections of central's config (a subclass's)."""
        return {}

    # ---------------------------------------------------------------- processes

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self._logs.get(name)
        if log is None:
            log = (self.log_dir / f"{name}.log").open("ab")
            self._logs[name] = log
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "entrada.cli", *args],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )

    def start(self) -> None:
        """Broker, central, then every gate; returns when all are ready. On failure
        everything already started is stopped again (no broker left behind)."""
        try:
            self.write_configs()
            self.broker.start()
            self.start_central()
            for g in self.gates:
                self.start_gate(g.id)
        except BaseException:
            self.stop()
            raise

    def start_central(self) -> None:
        self._spawn("central", ["central", "--config", str(self.central_config)])
        self._wait(lambda: self.central_db().exists(), 20, "central store")

    def start_gate(self, gate_id: str) -> None:
        self._spawn(gate_id, ["device", "--config", str(self.gate_config(gate_id))])
        sock = self.run_dir / "sim" / f"{gate_id}.sock"
        self._wait(sock.exists, 20, f"{gate_id} simulator channel")

    def kill(self, name: str) -> None:
        """SIGKILL a daemon: no clean shutdown, no offline status, no flush."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        client = self._clients.pop(name, None)
        if client is not None:
            client.close()

    def terminate(self, name: str, timeout: float = 15) -> int | None:
        """SIGTERM a daemon and wait for its clean stop; returns its exit code."""
        proc = self.procs.get(name)
        client = self._clients.pop(name, None)
        if client is not None:
            client.close()
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None and proc.returncode not in (0, -9):
                    raise EntradaError(
                        f"{name} exited with {proc.returncode}; see "
                        f"{self.log_dir / (name + '.log')}"
                    )
            time.sleep(0.05)
        raise EntradaError(f"timed out waiting for {what}")

    def stop(self) -> None:
        """Stop gates, central and broker cleanly; kill whatever does not stop."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        order = [*self.device_ids(), "central"]
        for name in order:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in order:
            proc = self.procs.get(name)
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", name)
                proc.kill()
                proc.wait(timeout=5)
        self.broker.stop()
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def __enter__(self) -> Site:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------- input

    def _client(self, gate_id: str) -> SimClient:
        client = self._clients.get(gate_id)
        if client is None:
            client = SimClient(self.run_dir, gate_id)
            self._clients[gate_id] = client
        return client

    def tap(self, gate_id: str, uid: str) -> None:
        reply = self._client(gate_id).tap(uid)
        if not reply.get("ok"):
            raise EntradaError(f"tap refused by {gate_id}: {reply.get('error')}")

    def tap_and_wait(self, gate_id: str, uid: str, timeout: float = 15) -> None:
        """Tap, and return once the gate has recorded the decision (an event emitted)."""
        before = self.gate_state(gate_id)["emitted"]
        self.tap(gate_id, uid)
        self._wait(
            lambda: self.gate_state(gate_id)["emitted"] > before,
            timeout,
            f"{gate_id} to decide on {uid}",
        )

    def passages_known(self, gate_id: str) -> int:
        """Passages a gate holds (its own and its peers')."""
        conn = _ro(self.gate_db(gate_id))
        try:
            return int(conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])
        finally:
            conn.close()

    def wait_passages(self, count: int, timeout: float = 30) -> None:
        """Until every gate holds at least ``count`` passages (peers' included)."""
        self._wait(
            lambda: all(self.passages_known(g.id) >= count for g in self.gates),
            timeout,
            f"every gate to know {count} passages",
        )

    def rotate(self, gate_id: str) -> None:
        """Turn a gate's simulated turnstile once (the gate needs ``rotation="sim"``)."""
        reply = self._client(gate_id).rotate()
        if not reply.get("ok"):
            raise EntradaError(f"rotation refused by {gate_id}: {reply.get('error')}")

    def set_time(self, wall: float, speed: float | None = None) -> None:
        """Move the wall clock of every gate with ``clock="sim"`` to ``wall`` (Unix time),
        running ``speed`` times real time from now on if given."""
        for g in self.gates:
            if g.clock == "sim":
                reply = self._client(g.id).set_clock(wall, speed)
                if not reply.get("ok"):
                    raise EntradaError(f"clock refused by {g.id}: {reply.get('error')}")

    def seed_catalog(self, rows: Sequence[tuple[str, str, str | None]]) -> int:
        from central.admin import set_wristbands

        return int(set_wristbands(self.central_db(), list(rows)))

    def publish_rules(self, document: dict[str, Any]) -> int:
        from central.admin_catalog import publish_rules

        return publish_rules(self.central_db(), document)

    def entitle(self, uid: str, tariff: str, **fields: Any) -> tuple[str, int]:
        from central.admin_catalog import entitle

        return entitle(self.central_db(), uid, tariff, **fields)

    def post(self, uid: str, amount_minor: int, at: float, description: str = "") -> int:
        from central.admin_catalog import post_to_tab

        entry = post_to_tab(self.central_db(), uid, amount_minor, description=description, now=at)
        return entry.head

    def pay(self, uid: str, amount_minor: int, at: float) -> int:
        from central.admin_catalog import pay_tab

        return pay_tab(self.central_db(), uid, amount_minor, now=at).head

    def time_stop(self, uid: str, at: float) -> int:
        from central.admin_catalog import stop_time

        return stop_time(self.central_db(), uid, at=at, now=at).head

    # ----------------------------------------------------------------- reading

    def gate_state(self, gate_id: str) -> dict[str, Any]:
        path = self.gate_db(gate_id)
        if not path.exists():
            return {"catalog_version": 0, "outbox": 0, "emitted": 0, "streams": {}}
        conn = _ro(path)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            streams = dict(conn.execute("SELECT name, last_seq FROM streams").fetchall())
            outbox = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        finally:
            conn.close()
        return {
            "catalog_version": int(meta.get("catalog_version", 0)),
            "outbox": int(outbox),
            "emitted": sum(streams.values()),
            "streams": streams,
        }

    def wait_catalog(self, version: int, timeout: float = 30) -> None:
        self._wait(
            lambda: all(self.gate_state(g.id)["catalog_version"] >= version for g in self.gates),
            timeout,
            f"gates to apply catalog v{version}",
        )

    def wait_drained(self, timeout: float = 60) -> bool:
        try:
            self._wait(
                lambda: all(self.gate_state(d)["outbox"] == 0 for d in self.device_ids()),
                timeout,
                "outboxes to drain",
            )
        except EntradaError:
            return False
        return True

    def central_events(
        self, kind: str | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Every event central stored for this site's gates (of one kind, from one gate)."""
        conn = _ro(self.central_db())
        try:
            rows = conn.execute(
                "SELECT device, stream, seq, kind, ts, data FROM events "
                "WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR device = ?2)",
                (kind, device),
            ).fetchall()
        finally:
            conn.close()
        return [
            {"device": d, "stream": s, "seq": q, "kind": k, "ts": ts, "data": json.loads(data)}
            for d, s, q, k, ts, data in rows
        ]

    def conflicts(self) -> list[dict[str, Any]]:
        """What central's replay of the offline decisions reported."""
        from dataclasses import asdict

        from central.replay import conflicts

        conn = _ro(self.central_db())
        try:
            return [asdict(c) for c in conflicts(conn)]
        finally:
            conn.close()

    def ledger(self) -> dict[str, int]:
        """Emitted by the devices vs stored at central: lost and duplicated events."""
        events = self.central_events()
        emitted: dict[tuple[str, str], int] = {}
        for device in self.device_ids():
            for stream, last in self.gate_state(device)["streams"].items():
                emitted[(device, stream)] = int(last)
        stored = {(e["device"], e["stream"], e["seq"]) for e in events}
        lost = sum(
            1
            for (dev, stream), last in emitted.items()
            for seq in range(1, last + 1)
            if (dev, stream, seq) not in stored
        )
        # The same tap stored twice under two sequence numbers would be a duplicate that
        # (device, stream, seq) cannot catch: it would repeat the gate, the kind, the uid
        # and the moment of the decision. (A visitor may legitimately be refused at an
        # exit twice, at two moments.) With a rotation sensor one tap makes gate.granted
        # and then gate.passage or gate.annulled: different kinds. Events without a uid
        # (gate.rotation_unexpected, gate.manual_open) key on their seq.
        seen: set[tuple[str, str, str, float]] = set()
        duplicated = 0
        for e in events:
            key = (e["device"], e["kind"], str(e["data"].get("uid", e["seq"])), e["ts"])
            if key in seen:
                duplicated += 1
            seen.add(key)
        return {
            "events_emitted": sum(emitted.values()),
            "events_stored": len(stored),
            "events_lost": lost,
            "events_duplicated": duplicated,
        }


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error, OSError):
            if pred():
                return True
        time.sleep(interval)
    return False
