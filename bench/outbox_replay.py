"""Outbox replay: 100,000 events waiting in a gate's outbox (written while it was offline),
then the broker and central come up. Target: central has stored all of them and the gate's
outbox is empty within 60 s.

Real processes (:class:`entrada.site.Site`): the gate (``entrada device``, the production
:class:`~controller.runtime.DeviceRuntime` on simulated drivers) is started first, with
no broker to talk to. Its outbox was filled beforehand through the store's own event API
(``DeviceStore.transaction().emit``, the rows a tap writes, ``--per-tx`` per
transaction) -- feeding 100,000 real taps would take minutes and measure the taps, not
the replay. The clock starts when the bench starts Mosquitto; then ``entrada central``
starts; the gate finds the broker on its next reconnect attempt (the site's config:
``reconnect_max = 2 s``). Completion: the retained ack covers every event (plain paho
client), central's store holds them all (read-only count), and the gate's outbox is empty
(read-only count on its SQLite, polled every 20 ms).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bench import common
from controller.store import DeviceStore
from entrada.site import GateSpec, Site

TARGET_S = 60.0
GATE = "gate-1"


def fill_outbox(site: Site, n: int, per_tx: int) -> str:
    quiet = logging.getLogger("controller.store")
    quiet.setLevel(logging.ERROR)  # "store was missing: created empty" is expected here
    try:
        store = DeviceStore(site.gate_db(GATE))
    finally:
        quiet.setLevel(logging.NOTSET)
    try:
        stream = store.stream_name("gate")
        now = time.time() - 3600.0
        written = 0
        while written < n:
            with store.transaction() as tx:
                for _ in range(min(per_tx, n - written)):
                    uid = common.known_uid(written)
                    tx.emit(
                        stream,
                        "gate.passage",
                        now + written * 0.01,
                        {
                            "uid": uid,
                            "direction": "in",
                            "outcome": "granted",
                            "rule_version": "admission/1",
                            "catalog_version": 1,
                        },
                    )
                    written += 1
        assert store.outbox_depth() == n
        return stream
    finally:
        store.close()


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--per-tx", type=int, default=100, help="events per transaction while filling the outbox"
    )
    parser.add_argument(
        "--offline-s",
        type=float,
        default=3.0,
        help="how long the gate runs without a broker before the clock starts",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.offline_s = 5000, 1.0
    common.quiet_logging()
    m = common.machine()
    common.header("outbox replay: offline backlog -> central", m)

    with common.workdir("replay", args.keep) as wd:
        site = Site(wd, [GateSpec(GATE)], site_id=common.SITE, log_level="WARNING")
        watch: common.AckWatch | None = None
        figures: dict[str, Any] = {}
        try:
            site.write_configs()
            t_fill = time.monotonic()
            stream = fill_outbox(site, args.events, args.per_tx)
            fill_s = time.monotonic() - t_fill
            site.start_gate(GATE)  # no broker yet: the gate runs offline
            time.sleep(args.offline_s)
            gate_db = site.gate_db(GATE)
            depth_before = common.ro_count(gate_db, "SELECT COUNT(*) FROM outbox")

            t0 = time.monotonic()
            site.broker.start()
            t_broker = time.monotonic()
            watch = common.AckWatch(site.broker.port, device=GATE, status=True)
            site.start_central()
            t_central = time.monotonic()
            stored_all = watch.wait(
                lambda marks: marks.get((GATE, stream), 0) >= args.events, TARGET_S * 3
            )
            t_stored = max((t for t, _d, _s in watch.arrivals), default=time.monotonic())
            empty = common.wait_until(
                lambda: common.ro_count(gate_db, "SELECT COUNT(*) FROM outbox") == 0,
                TARGET_S * 3,
                0.02,
            )
            t_empty = time.monotonic()
            central_rows = common.ro_count(
                site.central_db(), "SELECT COUNT(*) FROM events WHERE device = 'gate-1'"
            )
            online = [t for t, _d, state in watch.statuses if state == "online"]
            first_ack = min((t for t, _d, _s in watch.arrivals), default=None)
            figures = {
                "events": args.events,
                "fill_s": round(fill_s, 2),
                "outbox_before": depth_before,
                "broker_up_s": round(t_broker - t0, 3),
                "central_up_s": round(t_central - t0, 3),
                "gate_online_s": round(online[0] - t0, 3) if online else None,
                "first_ack_s": round(first_ack - t0, 3) if first_ack else None,
                "all_stored_s": round(t_stored - t0, 3),
                "outbox_empty_s": round(t_empty - t0, 3),
                "central_rows": central_rows,
                "acks": len(watch.arrivals),
                "stored_all": stored_all,
                "outbox_emptied": empty,
            }
        finally:
            if watch is not None:
                watch.close()
            site.stop()

    total = figures.get("outbox_empty_s") or float("inf")
    replay_s = None
    if figures.get("gate_online_s") is not None:
        replay_s = round(figures["outbox_empty_s"] - figures["gate_online_s"], 3)
    figures["replay_after_online_s"] = replay_s
    rate = args.events / replay_s if replay_s else 0.0
    figures["replay_events_per_s"] = round(rate)
    ok = (
        figures.get("stored_all")
        and figures.get("outbox_emptied")
        and figures.get("central_rows") == args.events
        and total <= TARGET_S
    )
    print(
        f"   outbox filled with {args.events:,} events in {figures['fill_s']} s "
        f"({args.per_tx} per transaction); gate ran offline {args.offline_s:g} s "
        f"(outbox {figures['outbox_before']:,})"
    )
    print(
        f"   from broker start: broker listening {figures['broker_up_s']} s, central up "
        f"{figures['central_up_s']} s, gate online {figures['gate_online_s']} s, first ack "
        f"{figures['first_ack_s']} s"
    )
    print(
        f"   all {args.events:,} stored (ack) at {figures['all_stored_s']} s, gate outbox "
        f"empty at {figures['outbox_empty_s']} s; central holds {figures['central_rows']:,}"
    )
    print(f"   replay itself (gate online -> outbox empty): {replay_s} s = {rate:,.0f} events/s")
    print(
        f"   target: all stored and outbox empty <= {TARGET_S:g} s after the broker starts: "
        f"{total} s -> {common.verdict(bool(ok))}"
    )
    common.emit(
        "outbox_replay",
        m,
        {
            "events": args.events,
            "per_tx": args.per_tx,
            "offline_s": args.offline_s,
            "quick": args.quick,
            "gate_reconnect_max_s": 2.0,
            "central_synchronous": "FULL",
        },
        figures,
        {"replay_le_60s": bool(ok)},
    )


if __name__ == "__main__":
    main()
