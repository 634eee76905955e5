"""Decision latency with tariffs: a tap -> the relay command at a gate that decides with the
rules engine (``admission = "tariffs"``), with 1,000,000 wristbands and 1,000,000
entitlements in its store. Target: p99 <= 2 ms for every kind of tap.

The site is the example aquapark (``config/examples/aquapark-rules.json``: facility >
pool > sauna with capacities, weekday/weekend/holiday price bands, a 2-hour ticket with
overtime, a day ticket with the sauna billed by time, a 10-entry pass, passback, offline
policies) plus a 5-days-of-choice pass; its capacities are raised so that the bench's
tens of thousands of visitors fit (the capacity check costs the same whatever the figure).
The catalog holds one entitlement per wristband (tariffs and concessions mixed), 4 % of
the wristbands are inside now with a history of passages (entry, pool, sauna) and an open
tab (postings, time-stops, payments), 10 % are passes with earlier entries, 1 % are
blocked. Wall time is fixed at Saturday 2026-11-21 16:00 in Warsaw (weekend bands) and
runs on from there.

Two gates run one after the other, each on its own copy of the store, each a real
:class:`~controller.runtime.DeviceRuntime` (simulated drivers, WAL, synchronous=FULL)
online to a private Mosquitto and a real ``entrada central``, instrumented as in
``bench.decision_latency`` (recorders on the relay and the indicator, ``_on_tap``
bracketed): the entrance ``main-in`` (outside -> facility) and the collecting exit
``main-out`` (facility -> outside, deposits paid back). Taps go in through the simulated
reader, the kinds shuffled; each UID is tapped once. Latency = relay pulse (a grant) or
indicator (a denial) - ``Tap.at``. Modes: ``isolated`` (the target: a tap goes in once
the previous one has settled, i.e. its event is acknowledged by central and the ack's
deletion done, plus ``--gap-ms``: a turnstile lets a visitor through every second or two)
and ``back_to_back`` (``--gap-ms`` after the previous ``_on_tap`` returned, as
``bench.decision_latency``'s isolated mode: a tap may meet the previous one's ack).

The same decision is also taken apart outside the runtime, on a sample of other UIDs of
each kind: the store lookup (``passages.of_uid`` + ``catalog.record``), ``assemble``, the
engine's ``decide``, and the event's ``dump_decision`` + ``dump_logged_input``.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bench import common
from bench.decision_latency import (
    Probe,
    RecordingIndicator,
    RecordingRelay,
    TimedRuntime,
    feed_isolated,
    stalls_in,
    summarise,
    watch_gc,
)
from controller.roles.gate_decide import gate_model
from controller.rules.assemble import HISTORY_DAYS, assemble
from controller.rules.catalog_schema import parse_catalog
from controller.rules.serial import dump_decision, dump_logged_input
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.registry import build_drivers
from entrada.protocol import (
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    RulesData,
    TimeStopData,
    WristbandData,
)
from entrada.site import Site

TARGET_P99_MS = 2.0
RULES_EXAMPLE = Path(__file__).resolve().parent.parent / "config/examples/aquapark-rules.json"
TZ = ZoneInfo("Europe/Warsaw")
#: The bench's wall clock starts here: a Saturday afternoon (weekend bands apply).
NOW = datetime(2026, 11, 21, 16, 0, tzinfo=TZ).timestamp()
MIN = 60.0
DAY = 86400.0

# ----------------------------------------------------------------------- the site


def rules_document() -> dict[str, Any]:
    """The example aquapark's rules, with a days-of-choice pass added and capacities
    raised for the bench's crowd."""
    doc: dict[str, Any] = json.loads(RULES_EXAMPLE.read_text())
    holidays = ["2026-11-01", "2026-11-11", "2026-12-24", "2026-12-25"]
    doc["site"].setdefault("holidays", []).extend(holidays)
    scale = {"facility": 200_000, "pool": 150_000}
    for zone in doc["zones"]:
        zone["capacity"] = scale.get(zone["id"], 50_000)
    doc["tariffs"].append(
        {
            "id": "days-5",
            "name": "5 days of choice within a year of the first",
            "zones": ["facility", "pool", "sauna"],
            "days_of_choice": 5,
            "valid_days": 365,
            "price": {"prices": {"adult": 28000, "child": 18000, "senior": 21000}},
            "entry_windows": [{"start": "06:00", "end": "22:00"}],
            "stay": {
                "sauna": {
                    "interval_minutes": 30,
                    "daily_cap_minor": 3000,
                    "rate": {"prices": {"adult": 1000, "senior": 700}},
                }
            },
            "offline": {"after_minutes": 30, "mode": "admit", "budget": 1},
        }
    )
    return doc


# ----------------------------------------------------------------- the population

#: Profiles of the wristbands inside now (``i < n // 25``, by ``i % 4``).
INSIDE = ("exit_in_time", "exit_overtime_paid", "exit_overtime_owing", "exit_sauna_tab")
FRESH_TARIFFS = ("2h",) * 9 + ("day",) * 6 + ("pass-10",) * 3 + ("days-5",) * 2
CONCESSIONS = ("child", "child", "senior", "student") + ("adult",) * 6
#: Every catalog entity, in the order central pages a snapshot in.
ENTITIES = ("entitlement", "payment", "posting", "rules", "timestop", "wristband")


def profile(i: int, n: int) -> str:
    """What wristband ``i`` of ``n`` is: blocked, inside now (four kinds of exit), a pass
    with earlier entries, or fresh (nothing used yet)."""
    if i % 100 == 99:
        return "blocked"
    if i < n // 25:
        return INSIDE[i % 4]
    if i % 10 == 3:
        return "pass_history"
    return "fresh"


def tariff_of(i: int, n: int) -> str:
    kind = profile(i, n)
    if kind in ("exit_in_time", "exit_overtime_paid", "exit_overtime_owing", "blocked"):
        return "2h"
    if kind == "exit_sauna_tab":
        return "day"
    if kind == "pass_history":
        return ("pass-10", "days-5")[i // 10 % 2]
    return FRESH_TARIFFS[i % 20]


def local_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).date().isoformat()


def _passage(
    i: int, k: int, at: float, zones: tuple[str | None, str | None], gate: str, **kw: Any
) -> PeerPassage:
    zone_from, zone_to = zones
    return PeerPassage(
        id=f"{i:024x}{k:08x}",
        uid=common.known_uid(i),
        at=at,
        zone_from=zone_from,
        zone_to=zone_to,
        direction="in" if zones in _INWARD else "out",
        gate=gate,
        **kw,
    )


_INWARD = {(None, "facility"), ("facility", "pool"), ("pool", "sauna")}


def passages_of(i: int, n: int) -> list[PeerPassage]:
    """The recorded passages of wristband ``i`` (oldest first)."""
    kind = profile(i, n)
    ent = {"entitlement_id": f"E{i:08d}", "tariff_id": tariff_of(i, n)}
    entry = {**ent, "consumed": True}
    if kind == "pass_history":
        return [
            _passage(i, 0, NOW - 9 * DAY - 6 * 3600, (None, "facility"), "main-in", **entry),
            _passage(i, 1, NOW - DAY - 5 * 3600, (None, "facility"), "main-in", **entry),
            _passage(i, 2, NOW - DAY - 2 * 3600, ("facility", None), "main-out", settled=True),
        ]
    if kind == "exit_in_time":
        return [
            _passage(i, 0, NOW - 60 * MIN, (None, "facility"), "main-in", **entry),
            _passage(i, 1, NOW - 55 * MIN, ("facility", "pool"), "pool-in", **ent),
            _passage(i, 2, NOW - 10 * MIN, ("pool", "facility"), "pool-out"),
        ]
    if kind in ("exit_overtime_paid", "exit_overtime_owing"):
        return [
            _passage(i, 0, NOW - 170 * MIN, (None, "facility"), "main-in", **entry),
            _passage(i, 1, NOW - 165 * MIN, ("facility", "pool"), "pool-in", **ent),
            _passage(i, 2, NOW - 20 * MIN, ("pool", "facility"), "pool-out"),
        ]
    if kind == "exit_sauna_tab":
        return [
            _passage(i, 0, NOW - 240 * MIN, (None, "facility"), "main-in", **entry),
            _passage(i, 1, NOW - 235 * MIN, ("facility", "pool"), "pool-in", **ent),
            _passage(i, 2, NOW - 150 * MIN, ("pool", "sauna"), "sauna-in", **ent),
            _passage(i, 3, NOW - 90 * MIN, ("sauna", "pool"), "sauna-out", tab_minor=2000),
            _passage(i, 4, NOW - 10 * MIN, ("pool", "facility"), "pool-out"),
        ]
    return []


def wristband_data(i: int, n: int) -> WristbandData:
    kind = profile(i, n)
    inside = kind.startswith("exit_")
    return WristbandData(
        status="blocked" if kind == "blocked" else "active",
        holder=f"guest {i}",
        assurance="uid_only" if kind == "fresh" and i % 50 == 11 else "secure",
        deposit_minor=(2000 if kind == "exit_sauna_tab" else 1000) if inside or i % 3 == 0 else 0,
        tab_limit_minor=20000 if inside else None,
    )


def entitlement_data(i: int, n: int) -> EntitlementData:
    kind = profile(i, n)
    uid = common.known_uid(i)
    tariff = tariff_of(i, n)
    concession: Any = CONCESSIONS[i // 7 % 10]
    if kind == "pass_history" and tariff == "pass-10":
        return EntitlementData(
            uid=uid,
            tariff_id=tariff,
            concession=concession,
            entries_used=2,
            first_used=local_day(NOW - 60 * DAY),
        )
    if kind == "pass_history":
        return EntitlementData(
            uid=uid, tariff_id=tariff, concession=concession, days_used=[local_day(NOW - 50 * DAY)]
        )
    day = local_day(NOW) if tariff in ("2h", "day") else None
    return EntitlementData(
        uid=uid, tariff_id=tariff, concession=concession, valid_from=day, valid_to=day
    )


def _tab_rows(i: int, n: int) -> dict[str, list[tuple[str, BaseModel]]]:
    """Postings, payments and time-stops of wristband ``i`` (by entity)."""
    kind = profile(i, n)
    uid = common.known_uid(i)
    postings: list[tuple[int, str, float]] = []  # amount, what, minutes ago
    payments: list[tuple[int, float]] = []
    stops: list[float] = []
    if kind in ("exit_overtime_paid", "exit_overtime_owing"):
        postings = [(500, "locker", 160), (1850, "bar", 120)]
        stops = [15]
        payments = [(10000, 14)] if kind == "exit_overtime_paid" else []
    elif kind == "exit_sauna_tab":
        postings, payments = [(2400, "bar", 100)], [(4400, 30)]
    return {
        "posting": [
            (f"P{i:08d}-{k}", PostingData(uid=uid, amount_minor=a, description=d, ts=NOW - m * MIN))
            for k, (a, d, m) in enumerate(postings, 1)
        ],
        "payment": [
            (f"Y{i:08d}", PaymentData(uid=uid, amount_minor=a, method="kiosk", ts=NOW - m * MIN))
            for a, m in payments
        ],
        "timestop": [(f"T{i:08d}", TimeStopData(uid=uid, at=NOW - m * MIN)) for m in stops],
    }


def catalog_rows(
    n: int, entities: tuple[str, ...] = ENTITIES
) -> Iterator[tuple[str, str, str | None, BaseModel]]:
    """The site's catalog as ``(entity, key, uid, data)``, in (entity, key) order: the order
    central pages a snapshot in."""
    tab_entities = {"payment", "posting", "timestop"} & set(entities)
    for entity in sorted(entities):
        if entity == "wristband":
            for i in range(n):
                yield entity, common.known_uid(i), common.known_uid(i), wristband_data(i, n)
        elif entity == "entitlement":
            for i in range(n):
                yield entity, f"E{i:08d}", common.known_uid(i), entitlement_data(i, n)
        elif entity == "rules":
            yield entity, "site", None, RulesData(document=rules_document())
        elif entity in tab_entities:
            for i in range(n // 25):
                for key, data in _tab_rows(i, n)[entity]:
                    yield entity, key, common.known_uid(i), data


def population_key() -> str:
    """Stores and pages built from this population are cached under this key (a hash of
    the code that makes it)."""
    makers = (rules_document, profile, tariff_of, passages_of, _passage, wristband_data)
    makers += (entitlement_data, _tab_rows, catalog_rows, build_store)
    source = f"{NOW}{RULES_EXAMPLE.read_text()}" + "".join(inspect.getsource(f) for f in makers)
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:8]


def build_store(store: DeviceStore, n: int) -> None:
    """Fill an empty store with the site's catalog (version 1) and the recorded passages."""
    store.bulk_load_catalog(
        ((e, k, u, d.model_dump_json()) for e, k, u, d in catalog_rows(n)), version=1
    )
    with store.transaction():
        for i in range(n):
            for p in passages_of(i, n):
                store.passages.add(p)


# -------------------------------------------------------------------- the taps

ENTRY_KINDS = ("entry_first_use", "entry_pass_history", "entry_denied")
EXIT_KINDS = INSIDE
GATES: dict[str, dict[str, Any]] = {
    "main-in": {"direction": "in", "zone_to": "facility"},
    "main-out": {"direction": "out", "zone_from": "facility", "collects_media": True},
}


def uids_by_kind(n: int, rng: random.Random) -> dict[str, list[str]]:
    """Every wristband by the kind of tap it makes (shuffled); unknown UIDs are denied
    entries (as are the blocked wristbands)."""
    pools: dict[str, list[str]] = {k: [] for k in (*ENTRY_KINDS, *EXIT_KINDS)}
    for i in range(n):
        kind = profile(i, n)
        if kind == "fresh":
            kind = "entry_first_use"
        elif kind == "pass_history":
            kind = "entry_pass_history"
        elif kind == "blocked":
            kind = "entry_denied"
        pools[kind].append(common.known_uid(i))
    pools["entry_denied"] += [common.unknown_uid(i) for i in range(len(pools["entry_denied"]))]
    for pool in pools.values():
        rng.shuffle(pool)
    return pools


def take(pools: dict[str, list[str]], kinds: tuple[str, ...], count: int) -> dict[str, list[str]]:
    """``count`` unused UIDs of each kind (fewer if a pool runs out)."""
    out = {}
    for kind in kinds:
        out[kind] = pools[kind][:count]
        del pools[kind][:count]
    return out


def shuffled(by_kind: dict[str, list[str]], rng: random.Random) -> list[str]:
    uids = [u for us in by_kind.values() for u in us]
    rng.shuffle(uids)
    return uids


# ------------------------------------------------------------ the decision, apart


def decision_parts(db: Path, gate_id: str, by_kind: dict[str, list[str]]) -> dict[str, Any]:
    """Each step of a tap's decision timed on its own (outside the runtime), per kind."""
    cfg = gate_config(Path("/nonexistent"), 1, gate_id).gate
    gate = gate_model(cfg, gate_id)
    store = DeviceStore(db)
    try:
        site = parse_catalog({"version": store.catalog_version, **(store.catalog.rules() or {})})
        out: dict[str, Any] = {}
        for kind, uids in by_kind.items():
            steps: dict[str, list[float]] = {
                k: [] for k in ("lookup", "assemble", "decide", "dump", "total")
            }
            codes: dict[str, int] = {}
            for uid in uids:
                now = NOW + 1.0
                t0 = time.perf_counter()
                passages = store.passages.of_uid(uid, now - HISTORY_DAYS * DAY)
                record = store.catalog.record(uid, passages)
                t1 = time.perf_counter()
                inputs = assemble(record, site, gate, now, occupancy={}, minutes_offline=None)
                t2 = time.perf_counter()
                decision = inputs.decide()
                t3 = time.perf_counter()
                dump_decision(decision)
                dump_logged_input(inputs)
                t4 = time.perf_counter()
                for key, dt in zip(
                    steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True
                ):
                    steps[key].append(dt)
                codes[str(decision.code)] = codes.get(str(decision.code), 0) + 1
            out[kind] = {k: common.stats_ms(v) for k, v in steps.items()} | {"outcomes": codes}
        return out
    finally:
        store.close()


# ------------------------------------------------------------------ the runtime

MODES = ("isolated", "back_to_back")


class BenchClock:
    """Wall time from :data:`NOW` on, at the real pace; monotonic time is the system's."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic()

    def time(self) -> float:
        return NOW + (time.monotonic() - self._mono0)

    def monotonic(self) -> float:
        return time.monotonic()


def gate_config(wd: Path, port: int, gate_id: str) -> DeviceConfig:
    doc = common.device_config_doc(wd, port, gate_id)
    doc["gate"] |= {"admission": "tariffs", **GATES[gate_id]}
    return DeviceConfig.model_validate(doc)


def feed_settled(rt: TimedRuntime, uids: list[str], gap: float) -> int:
    """One tap at a time, each once the previous one has settled: handled, and its event
    acknowledged by central (so the ack's deletion is behind it too), plus ``gap``."""
    lost = 0
    for uid in uids:
        rt.probe.handled.clear()
        rt.drivers.rfid.inject(uid)  # type: ignore[attr-defined]
        if not rt.probe.handled.wait(5.0):
            lost += 1
        common.wait_until(lambda: rt.outbox.inflight_events == 0, 5.0, 0.0005)
        time.sleep(gap)
    return lost


def run_gate(
    wd: Path, port: int, db: Path, gate_id: str, taps: dict[str, list[str]], gap: float
) -> tuple[Probe, dict[str, Any]]:
    """One gate's runtime on ``db``: the ``warmup`` taps, then each mode's taps."""
    cfg = gate_config(wd, port, gate_id)
    drivers = build_drivers(cfg.drivers)
    probe = Probe()
    drivers.relay = RecordingRelay(drivers.relay, probe)  # type: ignore[assignment]
    drivers.indicator = RecordingIndicator(drivers.indicator, probe)  # type: ignore[assignment]
    rt = TimedRuntime(cfg, drivers, DeviceStore(db), clock=BenchClock())
    rt.probe = probe
    gc_watch = watch_gc(probe)
    thread = threading.Thread(target=rt.run, name=f"owner-{gate_id}", daemon=True)
    thread.start()
    info: dict[str, Any] = {}
    try:
        if not common.wait_until(lambda: rt.minutes_offline(NOW) is None, 20):
            raise RuntimeError(f"{gate_id} did not get in contact with central")
        if rt.site is None:
            raise RuntimeError(f"{gate_id} has no usable rules (faults {sorted(rt.faults)})")
        time.sleep(0.5)  # birth, catalog head, presence
        feed_settled(rt, taps["warmup"], gap)
        for mode in MODES:
            t0 = time.perf_counter()
            if mode == "isolated":
                lost = feed_settled(rt, taps[mode], gap)
            else:
                lost = feed_isolated(rt, taps[mode], gap)
            info[mode] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "not_handled_in_5s": lost,
                "stalls": stalls_in(probe, taps[mode]),
            }
        info["counters"] = {k: v for k, v in vars(rt.counters).items() if k != "events"}
        info["gc_tracked_objects"] = len(gc.get_objects())
    finally:
        gc.callbacks.remove(gc_watch)
        rt.request_stop("benchmark over")
        thread.join(15)
    return probe, info


def first_output(s: dict[str, Any]) -> dict[str, Any]:
    return s["tap_to_first_output_all"]


def print_kind(kind: str, modes: dict[str, Any], parts: dict[str, Any]) -> None:
    iso = modes["isolated"]
    print(f"-- {kind}: outcomes {iso['outcomes']}, missing {iso['missing']}")
    for mode, s in modes.items():
        print(common.stats_line(f"{mode}: tap->relay", s["tap_to_relay_granted"]))
        print(common.stats_line(f"{mode}: tap->indicator", s["tap_to_indicator_denied"]))
    print(common.stats_line("isolated: of which inbox wait", iso["inbox_wait"]))
    print(common.stats_line("isolated: tap->event committed", iso["tap_to_committed"]))
    for step in ("lookup", "assemble", "decide", "dump", "total"):
        print(common.stats_line(f"apart: {step}", parts[step]))


def print_stalls(gate_id: str, info: dict[str, Any]) -> None:
    for mode in MODES:
        st = info[mode]["stalls"]
        slow = sorted(st.get("slow_steps", {}).items(), key=lambda kv: -kv[1]["max_ms"])
        steps = ", ".join(f"{w} x{a['count']} (max {a['max_ms']:.1f} ms)" for w, a in slow)
        late = st.get("late_taps_by_cause", {})
        print(f"   {gate_id} {mode}, {info[mode]['seconds']} s; owner steps > 1 ms: {steps}")
        print(f"   {gate_id} {mode}: taps that waited > 1 ms in the inbox, by cause: {late}")


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--wristbands", type=int, default=1_000_000)
    parser.add_argument("--taps", type=int, default=2500, help="isolated taps per kind")
    parser.add_argument("--b2b", type=int, default=1000, help="back-to-back taps per kind")
    parser.add_argument("--apart", type=int, default=2000, help="UIDs per kind timed apart")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up taps per kind")
    parser.add_argument("--gap-ms", type=float, default=0.5, help="pause after each tap")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.wristbands, args.taps, args.b2b, args.apart, args.warmup = 20_000, 120, 60, 60, 10
    common.quiet_logging()
    m = common.machine()
    common.header("decision latency with tariffs: tap -> relay command", m)
    rng = random.Random(args.seed)
    gates = {"main-in": ENTRY_KINDS, "main-out": EXIT_KINDS}
    counts = {"apart": args.apart, "warmup": args.warmup, "isolated": args.taps}
    counts["back_to_back"] = args.b2b
    pools = uids_by_kind(args.wristbands, rng)
    chosen = {
        g: {mode: take(pools, kinds, k) for mode, k in counts.items()} for g, kinds in gates.items()
    }
    del pools  # a million strings in lists would lengthen every full GC pass of the run

    with common.workdir("tariffs", args.keep) as wd:
        dbs = {  # each gate its own store, as on site
            gate_id: common.copy_store(
                args.wristbands,
                wd / gate_id / "device.db",
                name=f"tariff-store-{population_key()}",
                build=build_store,
            )
            for gate_id in gates
        }
        parts = {}
        for gate_id in gates:
            parts |= decision_parts(dbs[gate_id], gate_id, chosen[gate_id]["apart"])
        site = Site(wd / "site", gates=[], site_id=common.SITE, log_level="WARNING")
        site.start()  # broker and `entrada central` (own process)
        results: dict[str, dict[str, Any]] = {}
        phases: dict[str, Any] = {}
        try:
            for gate_id, kinds in gates.items():
                by_mode = chosen[gate_id]
                taps = {mode: shuffled(by_mode[mode], rng) for mode in ("warmup", *MODES)}
                probe, phases[gate_id] = run_gate(
                    wd, site.broker.port, dbs[gate_id], gate_id, taps, args.gap_ms / 1e3
                )
                for kind in kinds:
                    results[kind] = {m: summarise(probe, by_mode[m][kind]) for m in MODES}
        finally:
            site.stop()

    print(f"   store: {args.wristbands:,} wristbands and as many entitlements")
    for gate_id, info in phases.items():
        print(
            f"   gate {gate_id}: outcomes {info['counters']['outcomes']}; objects tracked by "
            f"the GC at the end {info['gc_tracked_objects']:,}"
        )
        print_stalls(gate_id, info)
    for kind, modes in results.items():
        print_kind(kind, modes, parts[kind])
    iso = {kind: first_output(modes["isolated"]) for kind, modes in results.items()}
    ok = {kind: bool(st.get("n")) and st["p99"] <= TARGET_P99_MS for kind, st in iso.items()}
    ratios = {
        kind: round(st["p50"] / parts[kind]["decide"]["p50"], 1)
        for kind, st in iso.items()
        if st.get("n") and parts[kind]["decide"].get("p50")
    }
    print(f"   isolated tap -> output p50 / engine decide() p50, per kind: {ratios}")
    worst = max((st.get("p99", 0.0) for st in iso.values()), default=0.0)
    print(
        f"   target: every kind's isolated tap -> output p99 <= {TARGET_P99_MS} ms: worst "
        f"{worst} ms -> {common.verdict(all(ok.values()))}"
    )
    common.emit(
        "decision_tariffs",
        m,
        {
            "wristbands": args.wristbands,
            "entitlements": args.wristbands,
            "taps_per_kind": counts,
            "apart_per_kind": args.apart,
            "gap_ms": args.gap_ms,
            "now": datetime.fromtimestamp(NOW, TZ).isoformat(),
            "quick": args.quick,
            "store_synchronous": "FULL",
        },
        {"kinds": results, "apart": parts, "phases": phases, "ratio_p50_to_decide": ratios},
        {f"{kind}_p99_le_2ms": v for kind, v in ok.items()},
    )


if __name__ == "__main__":
    main()
