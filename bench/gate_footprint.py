"""Gate daemon footprint: resident memory <= 80 MB and start-to-ready <= 2 s, with
1,000,000 wristbands in its store.

``entrada device --config FILE`` is started as a subprocess (simulated drivers, the store
prepared beforehand from the cached million-wristband file, a private Mosquitto running).
Start-to-ready is measured as systemd sees it: the bench binds a Unix datagram socket,
passes it as ``NOTIFY_SOCKET``, and times spawn -> the ``READY=1`` datagram (the daemon
sends it through sdnotify once its drivers, store and runtime are up; the broker
connection follows). Memory is VmRSS and VmHWM (peak) from ``/proc/PID/status``, in MiB,
right after ready, after 2 s idle (online), and after 1,000 taps through the simulator
channel (each a distinct UID, every event committed). The first start is measured and then
``--starts - 1`` more restarts on the same store (the page cache is warm in all of them:
the store was just copied; on a Pi after a power cut the first start reads from SD card).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common
from controller.simchannel import SimClient
from entrada.broker import PrivateBroker

TARGET_RSS_MIB = 80.0
TARGET_READY_S = 2.0
GATE = "gate-1"


class Daemon:
    def __init__(self, wd: Path, config: Path) -> None:
        self.wd = wd
        self.config = config
        self.notify_path = wd / "notify.sock"
        self.notify_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = (wd / "gate.log").open("ab")

    def start(self, timeout: float = 30.0) -> float:
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path))
        env.pop("WATCHDOG_USEC", None)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "entrada.cli", "device", "--config", str(self.config)],
            env=env,
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(
                    f"gate not ready (exit {self.proc.poll()}); see {self.wd / 'gate.log'}"
                )
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in data.split(b"\n"):
                return time.monotonic() - t0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> float:
        """SIGTERM and wait; returns how long the clean stop took."""
        t0 = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        return time.monotonic() - t0

    def close(self) -> None:
        self.stop()
        self.sock.close()
        self.log.close()


def emitted(db: Path) -> int:
    return common.ro_count(db, "SELECT COALESCE(SUM(last_seq), 0) FROM streams")


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--wristbands", type=int, default=1_000_000)
    parser.add_argument("--taps", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=5, help="starts timed (first + restarts)")
    args = parser.parse_args()
    if args.quick:
        args.wristbands, args.taps, args.starts = min(args.wristbands, 20_000), 100, 2
    common.quiet_logging()
    m = common.machine()
    common.header("gate daemon footprint: RSS and start-to-ready", m)

    with common.workdir("footprint", args.keep) as wd:
        db = common.copy_store(args.wristbands, wd / GATE / "device.db")
        broker = PrivateBroker(wd)
        broker.start()
        doc = common.device_config_doc(wd, broker.port)
        config = common.write_toml(wd / f"{GATE}.toml", doc)
        daemon = Daemon(wd, config)
        mem: dict[str, Any] = {}
        ready_times: list[float] = []
        stop_times: list[float] = []
        try:
            ready_times.append(daemon.start())
            mem["after_ready"] = common.proc_memory_mib(daemon.pid)
            time.sleep(2.0)
            mem["idle_2s"] = common.proc_memory_mib(daemon.pid)
            before = emitted(db)
            client = SimClient(wd / "run", GATE)
            t_taps = time.monotonic()
            try:
                for i in range(args.taps):
                    reply = client.tap(common.known_uid(i * 7919 % args.wristbands))
                    if not reply.get("ok"):
                        raise RuntimeError(f"tap refused: {reply}")
            finally:
                client.close()
            handled = common.wait_until(lambda: emitted(db) - before >= args.taps, 60, 0.05)
            taps_s = time.monotonic() - t_taps
            mem["after_taps"] = common.proc_memory_mib(daemon.pid)
            for _ in range(args.starts - 1):
                stop_times.append(daemon.stop())
                ready_times.append(daemon.start())
            stop_times.append(daemon.stop())
        finally:
            daemon.close()
            broker.stop()
        store_mb = db.stat().st_size / 1e6 if db.exists() else 0.0

    worst_rss = max(v["VmHWM"] for v in mem.values())
    ready = common.stats_ms(ready_times)
    ok_rss = worst_rss <= TARGET_RSS_MIB
    ok_ready = max(ready_times) <= TARGET_READY_S
    print(
        f"   store: {args.wristbands:,} wristbands ({store_mb:.0f} MB file); broker running, "
        f"no central"
    )
    for when, v in mem.items():
        print(
            f"   {when:<12} VmRSS {v['VmRSS']:6.1f} MiB  VmHWM {v['VmHWM']:6.1f} MiB  "
            f"(anon {v.get('RssAnon', 0):.1f}, file {v.get('RssFile', 0):.1f})"
        )
    print(
        f"   {args.taps:,} taps through the simulator channel in {taps_s:.1f} s, all "
        f"committed: {handled}"
    )
    print(
        "   start-to-ready (spawn -> READY=1): " + ", ".join(f"{t:.3f}" for t in ready_times) + " s"
    )
    if stop_times:
        print(
            "   clean stop (SIGTERM -> exit): " + ", ".join(f"{t:.3f}" for t in stop_times) + " s"
        )
    print(
        f"   target: RSS <= {TARGET_RSS_MIB:g} MB (peak {worst_rss} MiB) -> "
        f"{common.verdict(ok_rss)}; start-to-ready <= {TARGET_READY_S:g} s (worst "
        f"{max(ready_times):.3f} s) -> {common.verdict(ok_ready)}"
    )
    common.emit(
        "gate_footprint",
        m,
        {
            "wristbands": args.wristbands,
            "taps": args.taps,
            "starts": args.starts,
            "quick": args.quick,
            "central": False,
            "memory_unit": "MiB",
        },
        {
            "memory_mib": mem,
            "peak_rss_mib": worst_rss,
            "start_to_ready_s": [round(t, 4) for t in ready_times],
            "start_to_ready_ms": ready,
            "stop_s": [round(t, 3) for t in stop_times],
            "taps_committed": handled,
            "store_mb": round(store_mb, 1),
        },
        {"rss_le_80mb": ok_rss, "start_to_ready_le_2s": ok_ready},
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
