"""Decision latency: a tap on the reader -> the relay command, with 1,000,000 wristbands in
the device store, media-only admission (``gate.admission = "media"``, the default: a
known, active, unexpired wristband opens). Target: p99 <= 2 ms. With the rules engine
deciding from tariffs, see ``bench.decision_tariffs``.

A real :class:`~controller.runtime.DeviceRuntime` (simulated drivers, the daemon's own
store settings: WAL, synchronous=FULL) runs on its own thread, online to a private
Mosquitto with a real central service (``entrada central``, own process) that stores and
acknowledges its events, as in production. Two instruments are slipped in:

- the relay and the indicator are wrapped by recorders that note ``time.monotonic()`` the
  moment the runtime commands them (before the simulator's own work);
- the runtime's ``_on_tap`` is wrapped to note which tap is being handled and when the
  owner thread took it and finished it (event committed, outbox pumped).

Taps go in through the simulated reader (``SimRfidReader.inject``, the same path a reader
thread takes); ``Tap.at`` is stamped by ``DeviceRuntime.on_uid``. Latency = pulse time -
``Tap.at``. Every tap uses a UID not used before (no debounce); about 5 % are unknown and
about 1 % of the known ones are blocked (denials light the indicator but pulse nothing).

Modes: ``isolated`` (the target: each tap is fed once the previous one is fully handled,
plus a small gap, so no tap queues behind another) and ``paced`` (open loop, one tap every
``--paced-interval-ms``, far beyond what a turnstile sees, to show queueing). The raw
catalog lookup ``DeviceStore.wristband(uid)`` is timed in the same run for the ratio, and
so is what a tap looks up now (``passages.of_uid`` + ``catalog.record``).
"""

from __future__ import annotations

import gc
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common
from controller.inputs import Tap
from controller.runtime import DeviceRuntime
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.registry import build_drivers
from entrada.site import Site

TARGET_P99_MS = 2.0


@dataclass
class Probe:
    """Written only by the runtime's owner thread while it handles a tap."""

    current: str | None = None
    tap_at: dict[str, float] = field(default_factory=dict)
    taken: dict[str, float] = field(default_factory=dict)
    relay: dict[str, float] = field(default_factory=dict)
    indicator: dict[str, tuple[float, str]] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    handled: threading.Event = field(default_factory=threading.Event)
    #: owner-thread steps that took longer than STALL_S: (what, start, seconds)
    stalls: list[tuple[str, float, float]] = field(default_factory=list)


STALL_S = 0.001


def watch_gc(probe: Probe) -> Any:
    """Note garbage-collector pauses longer than STALL_S (they stop every thread)."""
    started: dict[str, float] = {}

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started["t"] = time.monotonic()
        elif "t" in started:
            t0 = started.pop("t")
            dt = time.monotonic() - t0
            if dt > STALL_S:
                where = threading.current_thread().name
                probe.stalls.append((f"gc gen{info['generation']} ({where})", t0, dt))

    gc.callbacks.append(callback)
    return callback


class RecordingRelay:
    """Notes when the runtime commands a pulse, then lets the real driver do it."""

    def __init__(self, inner: Any, probe: Probe) -> None:
        self.inner = inner
        self.probe = probe

    def pulse(self, seconds: float) -> None:
        t = time.monotonic()
        if self.probe.current is not None:
            self.probe.relay[self.probe.current] = t
        self.inner.pulse(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RecordingIndicator:
    def __init__(self, inner: Any, probe: Probe) -> None:
        self.inner = inner
        self.probe = probe

    def signal(self, outcome: Any, detail: Any = None) -> None:
        t = time.monotonic()
        if self.probe.current is not None:
            self.probe.indicator[self.probe.current] = (t, str(outcome))
        self.inner.signal(outcome, detail)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedRuntime(DeviceRuntime):
    """The production runtime; ``_on_tap`` is bracketed by the probe, and owner-thread
    steps longer than STALL_S are noted (they are what a tap arriving meanwhile waits for).
    """

    probe: Probe

    def _timed(self, what: str, step: Any, *args: Any) -> None:
        t0 = time.monotonic()
        try:
            step(*args)
        finally:
            dt = time.monotonic() - t0
            if dt > STALL_S:
                self.probe.stalls.append((what, t0, dt))

    def _handle_safely(self, item: object) -> None:
        what = type(item).__name__
        topic = getattr(item, "topic", None)
        if topic:
            what += ":" + topic.rsplit("/", 1)[-1]
        self._timed(what, super()._handle_safely, item)

    def _pump_outbox(self) -> None:
        self._timed("pump_outbox", super()._pump_outbox)

    def _housekeeping(self, now: float) -> None:
        self._timed("housekeeping", super()._housekeeping, now)

    def _on_tap(self, tap: Tap) -> None:
        p = self.probe
        p.current = tap.uid
        p.tap_at[tap.uid] = tap.at
        p.taken[tap.uid] = time.monotonic()
        try:
            super()._on_tap(tap)
        finally:
            p.done[tap.uid] = time.monotonic()
            p.current = None
            p.handled.set()


def pick_uids(
    rng: random.Random, n_known: int, count: int, unknown_share: float, used: set[str]
) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        if rng.random() < unknown_share:
            uid = common.unknown_uid(rng.randrange(1 << 40))
        else:
            uid = common.known_uid(rng.randrange(n_known))
        if uid not in used:
            used.add(uid)
            out.append(uid)
    return out


def raw_lookups(db: Path, uids: list[str]) -> tuple[list[float], list[float]]:
    """The bare row lookup ``store.wristband(uid)`` and what a tap looks up now: the
    wristband's passages and every catalog row of its UID (as ``_tap_context`` does)."""
    store = DeviceStore(db)
    try:
        bare, record = [], []
        for uid in uids:
            t0 = time.perf_counter()
            store.wristband(uid)
            t1 = time.perf_counter()
            store.catalog.record(uid, store.passages.of_uid(uid, 0.0))
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            record.append(t2 - t1)
        return bare, record
    finally:
        store.close()


def feed_isolated(rt: TimedRuntime, uids: list[str], gap: float) -> int:
    reader = rt.drivers.rfid
    lost = 0
    for uid in uids:
        rt.probe.handled.clear()
        reader.inject(uid)  # type: ignore[attr-defined]
        if not rt.probe.handled.wait(5.0):
            lost += 1
        if gap:
            time.sleep(gap)
    return lost


def feed_paced(rt: TimedRuntime, uids: list[str], interval: float) -> float:
    """Open loop; returns the rate actually offered (taps/s)."""
    reader = rt.drivers.rfid
    start = time.perf_counter()
    for i, uid in enumerate(uids):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        reader.inject(uid)  # type: ignore[attr-defined]
    offered = len(uids) / max(time.perf_counter() - start, 1e-9)
    common.wait_until(lambda: all(u in rt.probe.done for u in uids), 120, 0.05)
    return offered


def summarise(probe: Probe, uids: list[str]) -> dict[str, Any]:
    relay, indicator, first, queue, handled = [], [], [], [], []
    outcomes: dict[str, int] = {}
    missing = 0
    for uid in uids:
        at = probe.tap_at.get(uid)
        if at is None or uid not in probe.done:
            missing += 1
            continue
        queue.append(probe.taken[uid] - at)
        handled.append(probe.done[uid] - at)
        sig = probe.indicator.get(uid)
        if sig is not None:
            outcomes[sig[1]] = outcomes.get(sig[1], 0) + 1
        if uid in probe.relay:
            relay.append(probe.relay[uid] - at)
            first.append(probe.relay[uid] - at)
        elif sig is not None:
            indicator.append(sig[0] - at)
            first.append(sig[0] - at)
    return {
        "tap_to_relay_granted": common.stats_ms(relay),
        "tap_to_indicator_denied": common.stats_ms(indicator),
        "tap_to_first_output_all": common.stats_ms(first),
        "inbox_wait": common.stats_ms(queue),
        "tap_to_committed": common.stats_ms(handled),
        "outcomes": outcomes,
        "missing": missing,
    }


def stalls_in(probe: Probe, uids: list[str], late_s: float = 0.001) -> dict[str, Any]:
    """Owner-thread steps longer than STALL_S during a mode, and what the owner thread was
    doing when each tap that waited more than ``late_s`` in the inbox arrived."""
    ats = [probe.tap_at[u] for u in uids if u in probe.tap_at]
    if not ats:
        return {}
    lo, hi = min(ats), max(probe.done.get(u, 0.0) for u in uids)
    steps = [(w, t, d) for w, t, d in probe.stalls if lo <= t <= hi]
    by_what: dict[str, dict[str, float]] = {}
    for what, _t, d in steps:
        agg = by_what.setdefault(what, {"count": 0, "max_ms": 0.0, "total_ms": 0.0})
        agg["count"] += 1
        agg["max_ms"] = round(max(agg["max_ms"], d * 1e3), 3)
        agg["total_ms"] = round(agg["total_ms"] + d * 1e3, 3)
    blamed: dict[str, int] = {}
    for u in uids:
        if u not in probe.taken or probe.taken[u] - probe.tap_at[u] <= late_s:
            continue
        at = probe.tap_at[u]
        hits = sorted(
            {w.split(" (")[0] for w, t, d in steps if t <= at <= t + d and not w.startswith("Tap")}
        )
        key = "+".join(hits) or "other (queued taps, GIL, scheduler)"
        blamed[key] = blamed.get(key, 0) + 1
    return {"slow_steps": by_what, "late_taps_by_cause": blamed}


def print_mode(name: str, s: dict[str, Any]) -> None:
    print(f"-- {name}: outcomes {s['outcomes']}, missing {s['missing']}")
    print(common.stats_line("tap -> relay pulse (granted)", s["tap_to_relay_granted"]))
    print(common.stats_line("tap -> indicator (denied)", s["tap_to_indicator_denied"]))
    print(common.stats_line("tap -> first output (all)", s["tap_to_first_output_all"]))
    print(common.stats_line("  of which inbox wait", s["inbox_wait"]))
    print(common.stats_line("tap -> event committed", s["tap_to_committed"]))
    st = s.get("stalls", {})
    for what, agg in sorted(st.get("slow_steps", {}).items(), key=lambda kv: -kv[1]["max_ms"]):
        print(
            f"     owner step > {STALL_S * 1e3:g} ms: {what:<22} x{agg['count']:<5} "
            f"max {agg['max_ms']:.1f} ms"
        )
    for cause, n in st.get("late_taps_by_cause", {}).items():
        print(f"     taps that waited > 1 ms in the inbox, arriving during {cause}: {n}")


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--wristbands", type=int, default=1_000_000)
    parser.add_argument("--taps", type=int, default=20_000, help="taps per mode")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.5,
        help="isolated mode: pause after each tap is fully handled",
    )
    parser.add_argument(
        "--paced-interval-ms",
        type=float,
        default=2.0,
        help="paced mode: one tap every this many ms, open loop",
    )
    parser.add_argument("--unknown-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.wristbands, args.taps, args.warmup = min(args.wristbands, 20_000), 1000, 100
    common.quiet_logging()
    m = common.machine()
    common.header("decision latency: tap -> relay command", m)
    rng = random.Random(args.seed)
    used: set[str] = set()

    with common.workdir("decision", args.keep) as wd:
        db = common.copy_store(args.wristbands, wd / "gate-1" / "device.db")
        lookup_uids = pick_uids(rng, args.wristbands, args.taps, args.unknown_share, used)
        lookups, records = raw_lookups(db, lookup_uids)

        site = Site(wd / "site", gates=[], site_id=common.SITE, log_level="WARNING")
        site.start()  # broker and `entrada central` (own process)
        rt: TimedRuntime | None = None
        thread: threading.Thread | None = None
        try:
            doc = common.device_config_doc(wd, site.broker.port)
            cfg = DeviceConfig.model_validate(doc)
            drivers = build_drivers(cfg.drivers)
            probe = Probe()
            drivers.relay = RecordingRelay(drivers.relay, probe)  # type: ignore[assignment]
            drivers.indicator = RecordingIndicator(drivers.indicator, probe)  # type: ignore[assignment]
            store = DeviceStore(db)
            rt = TimedRuntime(cfg, drivers, store)
            rt.probe = probe
            gc_watch = watch_gc(probe)
            thread = threading.Thread(target=rt.run, name="device-owner", daemon=True)
            thread.start()
            if not common.wait_until(lambda: rt is not None and rt.link.connected, 20):
                raise RuntimeError("device did not connect to the broker")
            time.sleep(0.5)  # birth, catalog head exchange

            warm = pick_uids(rng, args.wristbands, args.warmup, args.unknown_share, used)
            feed_isolated(rt, warm, args.gap_ms / 1000)

            iso_uids = pick_uids(rng, args.wristbands, args.taps, args.unknown_share, used)
            t0 = time.perf_counter()
            lost = feed_isolated(rt, iso_uids, args.gap_ms / 1000)
            iso_time = time.perf_counter() - t0
            iso = summarise(probe, iso_uids)
            iso["not_handled_in_5s"] = lost
            iso["stalls"] = stalls_in(probe, iso_uids)

            paced_uids = pick_uids(rng, args.wristbands, args.taps, args.unknown_share, used)
            offered = feed_paced(rt, paced_uids, args.paced_interval_ms / 1000)
            paced = summarise(probe, paced_uids)
            paced["offered_taps_per_s"] = round(offered, 1)
            paced["stalls"] = stalls_in(probe, paced_uids)

            acked = common.wait_until(
                lambda: common.ro_count(db, "SELECT COUNT(*) FROM outbox") == 0, 60, 0.2
            )
            counters = dict(vars(rt.counters))
            gc.callbacks.remove(gc_watch)
            gc_objects = len(gc.get_objects())
            t_gc = time.perf_counter()
            gc.collect()
            gc_full_ms = round((time.perf_counter() - t_gc) * 1e3, 1)
        finally:
            if rt is not None:
                rt.request_stop("benchmark over")
            if thread is not None:
                thread.join(15)
            site.stop()

    look = common.stats_ms(lookups)
    granted = iso["tap_to_relay_granted"]
    print(
        f"   store: {args.wristbands:,} wristbands; {args.taps:,} taps per mode; "
        f"isolated run took {iso_time:.1f} s; outbox drained at the end: {acked}"
    )
    print(common.stats_line("raw store.wristband(uid)", look))
    print(common.stats_line("raw passages + catalog.record(uid)", common.stats_ms(records)))
    print(
        f"   objects tracked by the GC at the end: {gc_objects:,} (full collection "
        f"{gc_full_ms} ms, benchmark records included)"
    )
    print_mode("isolated (one tap at a time)", iso)
    print_mode(f"paced (open loop, {offered:,.0f} taps/s offered)", paced)
    ratio_p50 = granted["p50"] / look["p50"] if look.get("p50") else None
    ratio_p99 = granted["p99"] / look["p99"] if look.get("p99") else None
    ok = bool(granted.get("n")) and granted["p99"] <= TARGET_P99_MS
    print(f"   decision p50 is {ratio_p50:.1f}x the raw lookup p50, p99 {ratio_p99:.1f}x")
    print(
        f"   target: isolated tap -> relay p99 <= {TARGET_P99_MS} ms: "
        f"{granted.get('p99')} ms -> {common.verdict(ok)}"
    )
    common.emit(
        "decision_latency",
        m,
        {
            "wristbands": args.wristbands,
            "taps_per_mode": args.taps,
            "gap_ms": args.gap_ms,
            "paced_interval_ms": args.paced_interval_ms,
            "unknown_share": args.unknown_share,
            "quick": args.quick,
            "store_synchronous": "FULL",
            "journal": "WAL",
        },
        {
            "raw_lookup_ms": look,
            "raw_record_ms": common.stats_ms(records),
            "isolated": iso,
            "paced": paced,
            "ratio_p50": round(ratio_p50 or 0, 2),
            "ratio_p99": round(ratio_p99 or 0, 2),
            "runtime_counters": counters,
            "outbox_drained": acked,
            "gc_tracked_objects_end": gc_objects,
            "gc_full_collection_ms": gc_full_ms,
        },
        {"isolated_tap_to_relay_p99_le_2ms": ok},
    )


if __name__ == "__main__":
    main()
