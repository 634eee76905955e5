"""Rough end-to-end ingest benchmark: devices -> Mosquitto -> central -> durable commit -> ack.

Not a test (pytest does not collect it). Run from the repository root:

    .venv/bin/python tests/central/bench_ingest.py [--devices 20] [--batches 50] [--size 200]

A private Mosquitto is started on a free port and one central worker stores into a SQLite
file (synchronous=FULL) in a temporary folder on the same disk as the repository. The
devices run in a separate process (paho, QoS 1, payloads prepared before the clock
starts) and publish as fast as the broker takes them; the figure is events per second
from the first publish until every device has the ack for its last event.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from central.service import CentralService
from central.settings import CentralConfig
from entrada import config as entrada_config
from entrada.broker import PrivateBroker
from entrada.protocol import Topics

SITE = "bench"


def payloads(device: str, batches: int, size: int) -> list[bytes]:
    out, seq = [], 1
    for _ in range(batches):
        events = []
        for _ in range(size):
            events.append(
                {
                    "id": uuid.uuid4().hex,
                    "stream": "gate",
                    "seq": seq,
                    "kind": "gate.grant",
                    "ts": time.time(),
                    "data": {
                        "uid": "04A1B2C3D4E5F6",
                        "outcome": "granted",
                        "zone": "pool",
                        "rule_version": 12,
                    },
                }
            )
            seq += 1
        out.append(
            json.dumps({"v": 1, "type": "events", "device": device, "events": events}).encode()
        )
    return out


def devices_process(
    port: int, n_devices: int, batches: int, size: int, started: mp.Event, done: mp.Event
) -> None:
    topics = Topics(SITE)
    target = batches * size
    acked: dict[str, int] = {}
    lock = threading.Lock()
    all_acked = threading.Event()

    def on_message(client, userdata, msg):
        ack = json.loads(msg.payload)
        with lock:
            acked[ack["device"]] = ack["streams"].get("gate", 0)
            if len(acked) == n_devices and all(v >= target for v in acked.values()):
                all_acked.set()

    prepared = {f"g{d}": payloads(f"g{d}", batches, size) for d in range(n_devices)}
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-devices", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(topics.all_devices("ack"), 1)
    time.sleep(0.5)
    started.set()
    infos = []
    for b in range(batches):
        for device, msgs in prepared.items():
            infos.append(client.publish(topics.events(device), msgs[b], qos=1))
    all_acked.wait(300)
    done.set()
    client.disconnect()
    client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    total = args.devices * args.batches * args.size
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        broker = PrivateBroker(Path(tmp))
        broker.start()
        cfg = entrada_config.validate(
            CentralConfig,
            {
                "central": {"site": SITE, "data_dir": f"{tmp}/central"},
                "mqtt": {"port": broker.port},
            },
        )
        central = CentralService(cfg)
        central.start()
        assert central.wait_ready(10)
        started, done = mp.Event(), mp.Event()
        proc = mp.Process(
            target=devices_process,
            args=(broker.port, args.devices, args.batches, args.size, started, done),
        )
        proc.start()
        started.wait(60)
        t0 = time.perf_counter()
        done.wait(300)
        elapsed = time.perf_counter() - t0
        proc.join(30)
        stats = central.stats
        central.stop()
        broker.stop()
    print(
        f"{total:,} events ({args.devices} devices x {args.batches} batches x {args.size}) "
        f"in {elapsed:.2f} s = {total / elapsed:,.0f} events/s; "
        f"{stats.batches} commits, {stats.events_stored:,} stored, "
        f"{stats.acks_published} acks"
    )


if __name__ == "__main__":
    main()
