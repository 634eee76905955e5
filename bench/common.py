"""What every benchmark shares: statistics, the machine description, the JSON result line,
work folders, the cached million-wristband device store, configs, an ack watcher and the
queue benchmarks' site (a private broker and a central with a ``[queue]``).

A benchmark prints a readable report and, last, exactly one JSON line (:func:`emit`), so a
script can keep ``tail -n 1`` of the output.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from entrada.site import wait_until as site_wait_until

if TYPE_CHECKING:
    pass

SITE = "bench"
#: Where the million-row store is kept between runs (override with ENTRADA_BENCH_CACHE).
CACHE_ENV = "ENTRADA_BENCH_CACHE"
#: Parent of each run's work folder (override with ENTRADA_BENCH_TMP); must be on a real
#: disk, or durable commits cost nothing and the figures flatter us.
TMP_ENV = "ENTRADA_BENCH_TMP"


# ------------------------------------------------------------------- statistics


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stats_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """Summary of durations given in seconds, reported in milliseconds."""
    ordered = sorted(samples_s)
    n = len(ordered)
    if n == 0:
        return {"n": 0}
    return {
        "n": n,
        "mean": round(1e3 * sum(ordered) / n, 4),
        "min": round(1e3 * ordered[0], 4),
        "p50": round(1e3 * percentile(ordered, 50), 4),
        "p90": round(1e3 * percentile(ordered, 90), 4),
        "p99": round(1e3 * percentile(ordered, 99), 4),
        "p99_9": round(1e3 * percentile(ordered, 99.9), 4),
        "max": round(1e3 * ordered[-1], 4),
    }


def stats_line(label: str, st: dict[str, float], unit: str = "ms") -> str:
    if not st.get("n"):
        return f"  {label:<34} (no samples)"
    return (
        f"  {label:<34} n={st['n']:<6} p50={st['p50']:.3f} p90={st['p90']:.3f} "
        f"p99={st['p99']:.3f} p99.9={st['p99_9']:.3f} max={st['max']:.3f} {unit}"
    )


def print_stats(figures: dict[str, Any], rows: Sequence[tuple[str, str]]) -> None:
    """A :func:`stats_line` for each ``(label, key)`` of ``rows``, from ``figures[key]``."""
    for label, key in rows:
        print(stats_line(label, figures[key]))


# ------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware"):
                return value.strip()
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return math.nan


def filesystem_of(path: Path) -> str:
    """The file system type /proc/mounts gives for the mount holding ``path``."""
    best, fstype = "", "?"
    target = str(Path(path).resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            mount = parts[1]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, fstype = mount, parts[2]
    return fstype


def _mosquitto_version() -> str:
    import subprocess

    from entrada.broker import find_mosquitto

    try:
        out = subprocess.run(
            [find_mosquitto(), "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except Exception:  # noqa: BLE001 - only a description
        return "?"
    first = out.splitlines()[0] if out else "?"
    return first.replace("mosquitto version ", "")


def machine() -> dict[str, Any]:
    import paho.mqtt

    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "paho_mqtt": paho.mqtt.__version__,
        "mosquitto": _mosquitto_version(),
        "workdir_fs": filesystem_of(tmp_base()),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']} ({m['arch']}), {m['cores']} cores, {m['ram_gib']} GiB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, SQLite {m['sqlite']}, "
        f"paho-mqtt {m['paho_mqtt']}, Mosquitto {m['mosquitto']}, work dir on {m['workdir_fs']}"
    )


# ------------------------------------------------------------------- output


def start(title: str, expected: Sequence[str] = ()) -> dict[str, Any]:
    """A benchmark's opening: logging quieted (:func:`quiet_logging`; the ``expected``
    loggers only say errors, their warnings being what the run causes on purpose), then
    the machine described and the header printed. Returns the machine (:func:`machine`)."""
    quiet_logging()
    for name in expected:
        logging.getLogger(name).setLevel(logging.ERROR)
    m = machine()
    header(title, m)
    return m


def header(title: str, m: dict[str, Any]) -> None:
    print(f"== {title}")
    print(f"   {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {machine_line(m)}")
    if m["workdir_fs"] in ("tmpfs", "ramfs"):
        print(
            f"   WARNING: the work dir is on {m['workdir_fs']}: fsync is free, durable "
            f"commits look cheaper than on a disk (set {TMP_ENV})"
        )
    sys.stdout.flush()


def emit(
    name: str,
    m: dict[str, Any],
    params: dict[str, Any],
    figures: dict[str, Any],
    targets: dict[str, bool],
) -> None:
    """The last line of a benchmark's output: one JSON object."""
    doc = {
        "bench": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": m,
        "params": params,
        "figures": figures,
        "targets": targets,
        "all_targets_met": all(targets.values()),
    }
    sys.stdout.flush()
    print(json.dumps(doc, sort_keys=True, default=str), flush=True)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run with small N (seconds); figures are not meaningful",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work folder (daemon logs, databases) and print its path",
    )
    return parser


def quiet_logging(level: int = logging.WARNING) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


# ------------------------------------------------------------------- folders


def tmp_base() -> Path:
    return Path(os.environ.get(TMP_ENV) or tempfile.gettempdir())


@contextlib.contextmanager
def workdir(name: str, keep: bool = False) -> Iterator[Path]:
    base = tmp_base()
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"entrada-bench-{name}-", dir=base))
    try:
        yield path
    finally:
        if keep:
            print(f"   work folder kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def cache_dir() -> Path:
    path = Path(os.environ.get(CACHE_ENV) or (tmp_base() / "entrada-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------- wristbands


def known_uid(i: int) -> str:
    """The i-th wristband of the benchmark catalog (7-byte UID, like NTAG21x)."""
    return f"04{i:012X}"


def unknown_uid(i: int) -> str:
    """A UID that is in no benchmark catalog."""
    return f"05{i:012X}"


def wristband_status(i: int) -> str:
    return "blocked" if i % 100 == 99 else "active"


def wristband_rows(n: int) -> Iterator[tuple[str, str, str, str]]:
    """The media-only catalog: ``n`` wristbands as ``(entity, key, uid, data JSON)`` rows
    (``DeviceStore.bulk_load_catalog``); a third of them valid until 2033."""
    from entrada.protocol import WristbandData

    for i in range(n):
        uid = known_uid(i)
        data = WristbandData(
            status=wristband_status(i),  # type: ignore[arg-type]
            holder=f"guest {i}",
            valid_until=2_000_000_000.0 if i % 3 == 0 else None,
        )
        yield ("wristband", uid, uid, data.model_dump_json())


def _schema_key() -> str:
    from controller import catalog_copy, passages, store

    # the schema text keys the cache
    text = f"{store.SCHEMA_VERSION}:{store._SCHEMA}{catalog_copy.SCHEMA}{passages.SCHEMA}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


def load_media(store: Any, n: int) -> None:
    """Fill an empty store with the media-only catalog of ``n`` wristbands (version 1)."""
    store.bulk_load_catalog(wristband_rows(n), version=1)


def cached_store(
    n: int,
    log: Callable[[str], None] = print,
    *,
    name: str = "device-store",
    build: Callable[[Any, int], None] = load_media,
) -> Path:
    """A pristine device store made by ``build(store, n)`` (default: ``n`` wristbands,
    catalog v1), built once and kept in the cache folder, keyed by ``name``, ``n`` and the
    store schema. Copy it before use (:func:`copy_store`)."""
    from controller.store import DeviceStore

    path = cache_dir() / f"{name}-{_schema_key()}-{n}.db"
    lock_path = path.with_suffix(".lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        log(f"   building the {n:,}-wristband store {name!r} (cached at {path}) ...")
        t0 = time.perf_counter()
        building = path.with_name(path.name + ".building")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        quiet = logging.getLogger("controller.store")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # "store was missing: created empty" is expected here
        try:
            store = DeviceStore(building, synchronous="OFF")
        finally:
            quiet.setLevel(level)
        build(store, n)
        store.close()  # last connection: SQLite checkpoints and removes the WAL
        for suffix in ("-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
        building.rename(path)
        log(f"   built in {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 1e6:.0f} MB")
    return path


def copy_store(
    n: int,
    dest: Path,
    log: Callable[[str], None] = print,
    *,
    name: str = "device-store",
    build: Callable[[Any, int], None] = load_media,
) -> Path:
    """A private copy of a cached store (:func:`cached_store`) at ``dest`` (a device.db),
    flushed to disk: otherwise the first commits of the run wait for the copy's writeback
    (ext4 orders a journal commit after the data it covers), which no gate ever sees."""
    src = cached_store(n, log, name=name, build=build)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    os.sync()
    return dest


# ------------------------------------------------------------------- configs


def device_config_doc(
    workdir: Path,
    port: int,
    device_id: str = "gate-1",
    *,
    debounce: float = 2.0,
    relay_pulse: float = 1.0,
    log_level: str = "WARNING",
) -> dict[str, Any]:
    """A gate on simulated drivers, as an operator would write it (defaults elsewhere)."""
    return {
        "device": {
            "id": device_id,
            "site": SITE,
            "role": "gate",
            "data_dir": str(workdir / device_id),
            "run_dir": str(workdir / "run"),
        },
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min": 0.2, "reconnect_max": 2.0},
        "gate": {"debounce": debounce, "relay_pulse": relay_pulse},
        "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim", "buttons": "sim"},
        "log": {"level": log_level},
    }


def central_config_doc(workdir: Path, port: int, log_level: str = "WARNING") -> dict[str, Any]:
    return {
        "central": {"site": SITE, "data_dir": str(workdir / "central")},
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_max": 2.0},
        "log": {"level": log_level},
    }


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(doc))
    return path


# ------------------------------------------------------------------- MQTT helpers


def mqtt_client(client_id: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)


class AckWatch:
    """A plain paho client on the devices' retained ack topics. It notes the monotonic time
    each ack arrives and the highest watermark per (device, stream). With ``events=True``
    it also notes when each event batch passes the broker (``(time, [(stream, seq)])``),
    with ``status=True`` each retained status seen (``(time, device, state)``)."""

    def __init__(
        self,
        port: int,
        site: str = SITE,
        device: str = "+",
        events: bool = False,
        status: bool = False,
    ) -> None:
        self.topic = f"entrada/{site}/device/{device}/ack"
        self.marks: dict[tuple[str, str], int] = {}
        self.arrivals: list[tuple[float, str, dict[str, int]]] = []
        self.events: list[tuple[float, list[tuple[str, int]]]] = []
        self.statuses: list[tuple[float, str, str]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt_client(f"bench-ackwatch-{os.getpid()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        topics = [(self.topic, 1)]
        if events:
            topics.append((f"entrada/{site}/device/{device}/events", 1))
        if status:
            topics.append((f"entrada/{site}/device/{device}/status", 1))
        self.client.subscribe(topics)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("ack watcher: no SUBACK")

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        t = time.monotonic()
        if not msg.payload:
            return
        doc = json.loads(msg.payload)
        if doc.get("type") == "status":
            self.statuses.append((t, str(doc.get("device")), str(doc.get("state"))))
            return
        if doc.get("type") == "events":
            self.events.append((t, [(e["stream"], e["seq"]) for e in doc["events"]]))
            return
        streams = {str(k): int(v) for k, v in doc.get("streams", {}).items()}
        with self._cond:
            self.arrivals.append((t, str(doc.get("device")), streams))
            for stream, mark in streams.items():
                key = (str(doc.get("device")), stream)
                if mark > self.marks.get(key, -1):
                    self.marks[key] = mark
            self._cond.notify_all()

    def total(self) -> int:
        with self._cond:
            return sum(self.marks.values())

    def wait(self, pred: Callable[[dict[tuple[str, str], int]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.marks):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------- processes


def proc_memory_mib(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM (peak RSS) and the anonymous/file-backed split of a process, in MiB
    (the stricter reading of "MB")."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def add_batch_window_option(parser: Any) -> None:
    parser.add_argument(
        "--batch-window",
        type=float,
        default=None,
        help="central's [ingest] batch_window in s (default: the config default, 0)",
    )


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """entrada.site.wait_until, polling faster by default."""
    return site_wait_until(pred, timeout, interval)


def ro_count(db: Path, sql: str) -> int:
    """One read-only query returning a count (for polling another process's store)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()
