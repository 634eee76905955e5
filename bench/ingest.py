"""Central ingest: events stored per second by one central worker with durable commits
(``ingest.synchronous = FULL``). Target: >= 10,000 events/s.

Publisher processes (``--publishers``, each playing ``--devices`` gates with a stream
each) build their :class:`~entrada.protocol.EventBatch` payloads (``--size`` events each)
before the clock starts, then publish them as fast as the broker takes them (paho, QoS 1,
100 in flight, as :class:`~entrada.mqtt.MqttLink` does). Two phases on the same private
Mosquitto with the same payloads:

1. **raw**: a plain paho subscriber (QoS 1) that only counts messages: what loopback MQTT
   delivers to one Python process, the ceiling for anything we do;
2. **central**: a real :class:`~central.service.CentralService` (in this process, its own
   owner thread = one worker) decodes, validates, stores in one transaction per drained
   batch and publishes the acks; a plain paho client watches the retained acks.

Rate = events / (first publish -> last message received (raw) or last ack covering every
event (central)). The ratio central/raw shows how much of the cost is ours.
``--profile FILE`` runs the central phase under cProfile (owner thread only; slower) and
prints the top functions.
"""

from __future__ import annotations

import cProfile
import io
import multiprocessing as mp
import pstats
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench import common
from central.service import CentralService
from central.settings import CentralConfig
from entrada import protocol
from entrada.broker import PrivateBroker

TARGET_EVENTS_PER_S = 10_000.0


def build_payloads(device: str, batches: int, size: int) -> list[bytes]:
    stream = f"gate.{uuid.uuid4().hex[:8]}"
    now = time.time()
    out = []
    for b in range(batches):
        events = [
            protocol.Event(
                id=uuid.uuid4().hex,
                stream=stream,
                seq=b * size + k + 1,
                kind="gate.passage",
                ts=now + (b * size + k) * 0.001,
                data={
                    "uid": common.known_uid(b * size + k),
                    "direction": "in",
                    "outcome": "granted",
                    "rule_version": "admission/1",
                    "catalog_version": 1,
                },
            )
            for k in range(size)
        ]
        out.append(protocol.encode(protocol.EventBatch(device=device, events=events)))
    return out


def publisher(
    index: int, port: int, devices: int, batches: int, size: int, ready: Any, go: Any, results: Any
) -> None:
    """One publisher process: ``devices`` gates; payloads built before ``go``."""
    topics = protocol.Topics(common.SITE)
    names = [f"p{index}-g{d}" for d in range(devices)]
    prepared = {name: build_payloads(name, batches, size) for name in names}
    client = common.mqtt_client(f"bench-pub-{index}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.release()
    go.wait()
    rounds = 0
    while True:  # one round per phase, until the coordinator says stop (go cleared)
        t_first = time.monotonic()
        infos = [
            client.publish(topics.events(name), prepared[name][b], qos=1)
            for b in range(batches)
            for name in names
        ]
        for info in infos:
            info.wait_for_publish(120)
        results.put(
            (
                index,
                rounds,
                t_first,
                time.monotonic(),
                sum(len(p) for ps in prepared.values() for p in ps),
            )
        )
        rounds += 1
        ready.release()
        if not _wait_next(go, rounds):
            break
    client.disconnect()
    client.loop_stop()


def _wait_next(go: Any, rounds: int) -> bool:
    # the coordinator sets go.value to the round number to start, or -1 to stop
    while True:
        with go.lock:
            value = go.value
        if value == rounds:
            return True
        if value < 0:
            return False
        time.sleep(0.005)


class Go:
    """A start signal the publishers poll (a shared int: round number, -1 = stop)."""

    def __init__(self, ctx: Any) -> None:
        self.lock = ctx.Lock()
        self._value = ctx.Value("i", -2, lock=False)

    @property
    def value(self) -> int:
        return int(self._value.value)

    def set(self, value: int) -> None:
        with self.lock:
            self._value.value = value

    def wait(self) -> None:
        while self.value < 0:
            time.sleep(0.005)


class RawSubscriber:
    def __init__(self, port: int, expected: int) -> None:
        self.count = 0
        self.last = 0.0
        self.expected = expected
        self.done = threading.Event()
        subscribed = threading.Event()
        self.client = common.mqtt_client("bench-raw")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(protocol.Topics(common.SITE).all_devices("events"), qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("raw subscriber: no SUBACK")

    def _on_message(self, _c: object, _u: object, _msg: object) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.last = time.monotonic()
            self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ProfiledCentral(CentralService):
    """CentralService whose owner thread runs under cProfile."""

    profile: cProfile.Profile | None = None

    def _run(self) -> None:
        self.profile = cProfile.Profile()
        self.profile.enable()
        try:
            super()._run()
        finally:
            self.profile.disable()


def run_round(
    go: Go,
    round_no: int,
    ready: Any,
    n_pub: int,
    results: Any,
    done: threading.Event,
    timeout: float,
) -> tuple[float, float, bool]:
    for _ in range(n_pub):
        if not ready.acquire(timeout=120):
            raise RuntimeError("publishers did not get ready")
    go.set(round_no)
    finished = done.wait(timeout)
    starts, ends = [], []
    for _ in range(n_pub):
        _i, _r, t_first, t_end, _bytes = results.get(timeout=120)
        starts.append(t_first)
        ends.append(t_end)
    return min(starts), max(ends), finished


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes")
    parser.add_argument("--devices", type=int, default=10, help="devices per publisher")
    parser.add_argument("--batches", type=int, default=125, help="batches per device")
    parser.add_argument("--size", type=int, default=200, help="events per batch")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the central phase under cProfile and save the stats here",
    )
    common.add_batch_window_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.publishers, args.devices, args.batches = 2, 2, 5
    common.quiet_logging()
    m = common.machine()
    common.header("central ingest: events stored per second, one worker", m)
    n_dev = args.publishers * args.devices
    n_msgs = n_dev * args.batches
    total = n_msgs * args.size
    print(
        f"   {args.publishers} publisher processes x {args.devices} devices x "
        f"{args.batches} batches x {args.size} events = {total:,} events per phase "
        f"({n_msgs:,} messages)"
    )

    ctx = mp.get_context("spawn")
    with common.workdir("ingest", args.keep) as wd:
        broker = PrivateBroker(wd)
        broker.start()
        ready = ctx.Semaphore(0)
        go = Go(ctx)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=publisher,
                name=f"publisher-{i}",
                args=(i, broker.port, args.devices, args.batches, args.size, ready, go, results),
            )
            for i in range(args.publishers)
        ]
        central: CentralService | None = None
        watch: common.AckWatch | None = None
        try:
            t_build = time.monotonic()
            for p in procs:
                p.start()
            # phase 1: raw subscriber
            raw = RawSubscriber(broker.port, n_msgs)
            t0, t_pub_end, ok_raw = run_round(go, 0, ready, args.publishers, results, raw.done, 300)
            build_s = t0 - t_build
            raw_s = raw.last - t0
            raw.close()
            # phase 2: the central service
            doc = common.central_config_doc(wd, broker.port)
            doc["ingest"] = {"synchronous": args.synchronous}
            if args.batch_window is not None:
                doc["ingest"]["batch_window"] = args.batch_window
            cfg = CentralConfig.model_validate(doc)
            central = ProfiledCentral(cfg) if args.profile else CentralService(cfg)
            central.start()
            if not central.wait_ready(20):
                raise RuntimeError("central did not connect")
            watch = common.AckWatch(broker.port)
            all_acked = threading.Event()
            target = args.batches * args.size

            def waiter() -> None:
                assert watch is not None
                if watch.wait(
                    lambda marks: len(marks) == n_dev and all(v >= target for v in marks.values()),
                    600,
                ):
                    all_acked.set()

            threading.Thread(target=waiter, daemon=True).start()
            c0, _c_pub_end, ok_central = run_round(
                go, 1, ready, args.publishers, results, all_acked, 600
            )
            t_last_ack = max(t for t, _d, _s in watch.arrivals)
            central_s = t_last_ack - c0
            go.set(-1)
            stats = vars(central.stats).copy()
        finally:
            go.set(-1)
            if watch is not None:
                watch.close()
            if central is not None:
                central.stop()
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()
            broker.stop()
        stored = common.ro_count(
            cfg.central.data_dir / "central.sqlite", "SELECT COUNT(*) FROM events"
        )

    raw_rate = total / raw_s
    central_rate = total / central_s
    ok = ok_central and stored == total and central_rate >= TARGET_EVENTS_PER_S
    print(f"   payloads built in {build_s:.1f} s (before the clock)")
    print(
        f"-- raw paho subscriber (QoS 1): {n_msgs:,} messages in {raw_s:.2f} s = "
        f"{n_msgs / raw_s:,.0f} msg/s = {raw_rate:,.0f} events/s (publishers done after "
        f"{t_pub_end - t0:.2f} s)"
    )
    print(
        f"-- central (synchronous={args.synchronous}): {total:,} events acknowledged in "
        f"{central_s:.2f} s = {central_rate:,.0f} events/s; {stats['batches']} commits "
        f"({total / max(stats['batches'], 1):,.0f} events each), {stored:,} rows stored, "
        f"{stats['duplicates']} duplicates, {stats['acks_published']} acks"
    )
    print(f"   central reaches {central_rate / raw_rate:.1%} of the raw MQTT rate")
    print(
        f"   target: >= {TARGET_EVENTS_PER_S:,.0f} events/s per worker, durable: "
        f"{central_rate:,.0f} -> {common.verdict(ok)}"
        + ("  (profiled run: slower than a plain run)" if args.profile else "")
    )
    if args.profile and isinstance(central, ProfiledCentral) and central.profile is not None:
        central.profile.dump_stats(str(args.profile))
        out = io.StringIO()
        pstats.Stats(central.profile, stream=out).sort_stats("tottime").print_stats(15)
        print("\n".join(line for line in out.getvalue().splitlines()[:40] if line.strip()))
        print(f"   profile saved to {args.profile}")
    common.emit(
        "ingest",
        m,
        {
            "publishers": args.publishers,
            "devices": n_dev,
            "batches_per_device": args.batches,
            "events_per_batch": args.size,
            "events": total,
            "synchronous": args.synchronous,
            "quick": args.quick,
            "central_batch_window_s": args.batch_window,
            "profiled": bool(args.profile),
        },
        {
            "raw_msgs_per_s": round(n_msgs / raw_s, 1),
            "raw_events_per_s": round(raw_rate),
            "central_events_per_s": round(central_rate),
            "central_s": round(central_s, 3),
            "raw_s": round(raw_s, 3),
            "ratio_central_to_raw": round(central_rate / raw_rate, 4),
            "rows_stored": stored,
            "central_stats": stats,
            "raw_complete": ok_raw,
        },
        {"central_events_per_s_ge_10000": ok},
    )


if __name__ == "__main__":
    main()
