"""End to end: a tap at a gate -> the event stored at central, on loopback. Target: p99 <=
50 ms.

A whole site in real processes (:class:`entrada.site.Site`): a private Mosquitto,
``entrada central`` and one ``entrada device`` gate on simulated drivers. The catalog is
seeded through central and reaches the gate over MQTT. Taps go in through the gate's
simulator channel at a steady, modest rate, each with a UID not used before (about 5 %
unknown, so denials travel too).

"Stored at central" is observed the way the gate itself learns it: a plain paho client
subscribes to the gate's retained ack topic, and an event counts as stored when the first
ack whose watermark covers its sequence number arrives. Central publishes that ack only
after the transaction holding the event has committed (synchronous=FULL), so the figure is
an upper bound on "row durable in central's SQLite" by the ack's own trip (about 0.2 ms).
Latency = ack arrival - the moment the bench sent the tap to the simulator channel (both
``time.monotonic()`` in this process). Each tap's sequence number is read back from
central's store afterwards (uid -> seq), so nothing is assumed about numbering.
"""

from __future__ import annotations

import bisect
import json
import random
import sqlite3
import time
from typing import Any

from bench import common
from entrada.site import GateSpec, Site

TARGET_P99_MS = 50.0
GATE = "gate-1"


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0, help="taps per second")
    parser.add_argument("--unknown-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=2)
    common.add_batch_window_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.taps, args.rate = 200, 100.0
    common.quiet_logging()
    m = common.machine()
    common.header("end to end: tap -> stored at central (loopback)", m)
    rng = random.Random(args.seed)
    n_known = args.taps
    uids = [
        common.unknown_uid(i) if rng.random() < args.unknown_share else common.known_uid(i)
        for i in range(args.taps)
    ]

    with common.workdir("e2e", args.keep) as wd:
        site = Site(
            wd,
            [GateSpec(GATE)],
            site_id=common.SITE,
            debounce=2.0,
            relay_pulse=1.0,
            log_level="WARNING",
        )
        watch: common.AckWatch | None = None
        try:
            t_start = time.monotonic()
            if args.batch_window is None:
                site.start()
            else:  # Site.start(), with [ingest] batch_window added to central's config
                site.write_configs()
                with site.central_config.open("a") as f:
                    f.write(f"\n[ingest]\nbatch_window = {args.batch_window}\n")
                site.broker.start()
                site.start_central()
                site.start_gate(GATE)
            startup = time.monotonic() - t_start
            head = site.seed_catalog(
                [(common.known_uid(i), common.wristband_status(i), None) for i in range(n_known)]
            )
            t_cat = time.monotonic()
            site.wait_catalog(head, timeout=60)
            catalog_s = time.monotonic() - t_cat
            watch = common.AckWatch(site.broker.port, device=GATE, events=True)
            sent: dict[str, float] = {}
            interval = 1.0 / args.rate
            t0 = time.perf_counter()
            for i, uid in enumerate(uids):
                delay = t0 + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent[uid] = time.monotonic()
                site.tap(GATE, uid)
            feed_s = time.perf_counter() - t0
            # every tap handled by the gate (an event each) and acknowledged
            drained = common.wait_until(
                lambda: (st := site.gate_state(GATE))["emitted"] >= args.taps and st["outbox"] == 0,
                60,
                0.05,
            )
            conn = sqlite3.connect(f"file:{site.central_db()}?mode=ro", uri=True)
            try:
                rows = conn.execute(
                    "SELECT stream, seq, data FROM events WHERE device = ?", (GATE,)
                ).fetchall()
            finally:
                conn.close()
            time.sleep(0.2)
            arrivals = sorted(
                (t, streams) for t, dev, streams in list(watch.arrivals) if dev == GATE
            )
            passed: dict[tuple[str, int], float] = {}
            for t, ids in list(watch.events):
                for key in ids:
                    passed.setdefault(key, t)  # first sending, not a re-send
        finally:
            if watch is not None:
                watch.close()
            site.stop()

    by_uid = {json.loads(data)["uid"]: (stream, seq) for stream, seq, data in rows}
    latencies: list[float] = []
    to_broker: list[float] = []
    broker_to_ack: list[float] = []
    missing = 0
    # for each stream: ack times and watermarks, in arrival order, made monotone
    per_stream: dict[str, tuple[list[float], list[int]]] = {}
    for t, streams in arrivals:
        for stream, mark in streams.items():
            times, marks = per_stream.setdefault(stream, ([], []))
            times.append(t)
            marks.append(max(mark, marks[-1] if marks else 0))
    for uid, t_sent in sent.items():
        where = by_uid.get(uid)
        if where is None or where[0] not in per_stream:
            missing += 1
            continue
        times, marks = per_stream[where[0]]
        k = bisect.bisect_left(marks, where[1])
        if k == len(marks):
            missing += 1
            continue
        latencies.append(times[k] - t_sent)
        t_passed = passed.get(where)
        if t_passed is not None:
            to_broker.append(t_passed - t_sent)
            broker_to_ack.append(times[k] - t_passed)
    st = common.stats_ms(latencies)
    st_gate = common.stats_ms(to_broker)
    st_central = common.stats_ms(broker_to_ack)
    ok = bool(st.get("n")) and missing == 0 and st["p99"] <= TARGET_P99_MS
    print(
        f"   site up in {startup:.1f} s; catalog of {n_known:,} reached the gate in "
        f"{catalog_s:.1f} s; {args.taps:,} taps fed in {feed_s:.1f} s "
        f"({args.taps / feed_s:.0f}/s); {len(rows):,} events stored; gate outbox drained: "
        f"{drained}; taps without a stored event: {missing}"
    )
    print(common.stats_line("tap -> ack covering its event", st))
    print(common.stats_line("  tap -> event passes the broker", st_gate))
    print(common.stats_line("  event passes broker -> ack", st_central))
    print(
        f"   target: p99 <= {TARGET_P99_MS:g} ms (and every tap stored): {st.get('p99')} ms "
        f"-> {common.verdict(ok)}"
    )
    figures: dict[str, Any] = {
        "tap_to_stored_ms": st,
        "tap_to_event_at_broker_ms": st_gate,
        "event_at_broker_to_ack_ms": st_central,
        "events_stored": len(rows),
        "taps_missing": missing,
        "outbox_drained": drained,
        "site_startup_s": round(startup, 2),
        "catalog_sync_s": round(catalog_s, 2),
        "acks_seen": len(arrivals),
    }
    common.emit(
        "end_to_end",
        m,
        {
            "taps": args.taps,
            "rate_per_s": args.rate,
            "unknown_share": args.unknown_share,
            "quick": args.quick,
            "central_batch_window_s": args.batch_window,
            "observed_via": "retained ack watermark (after commit)",
            "central_synchronous": "FULL",
        },
        figures,
        {"tap_to_stored_p99_le_50ms": ok},
    )


if __name__ == "__main__":
    main()
