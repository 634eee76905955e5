"""What the runtime tests share: a gate config on simulated drivers, a plain MQTT peer
standing where central stands, and seeding the gate's catalog through that peer."""

import queue
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.settings import DeviceConfig
from entrada import protocol
from entrada.site import wait_until

UID = "04A1B2C3D4E5F6"


def device_config(tmp_path, port, gate=None, drivers=None):
    """gate-1 of site "t" on simulated drivers; ``gate``/``drivers`` add or override keys."""
    return DeviceConfig.model_validate(
        {
            "device": {
                "id": "gate-1",
                "site": "t",
                "role": "gate",
                "data_dir": str(tmp_path / "gate"),
                "run_dir": str(tmp_path / "run"),
            },
            "mqtt": {"port": port, "reconnect_min": 0.05, "reconnect_max": 0.5},
            "outbox": {"ack_timeout": 0.5, "backoff_max": 1.0},
            "gate": {"admission": "media", "debounce": 1.0, "relay_pulse": 0.2, **(gate or {})},
            "drivers": {"rfid": "sim", "relay": "sim", "indicator": "sim", **(drivers or {})},
        }
    )


class Peer:
    """A plain MQTT client standing where central stands: sees events, sends acks/pages."""

    def __init__(self, port):
        self.messages = queue.Queue()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="peer", protocol=paho.MQTTv5)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload), m.retain))
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("t/#", qos=1)
        self.c.subscribe("entrada/#", qos=1)
        self.c.loop_start()

    def publish(self, topic, payload, retain=False):
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def next(self, topic_suffix, timeout=5.0):
        deadline = threading.Event()
        while not deadline.is_set():
            topic, payload, retain = self.messages.get(timeout=timeout)
            if topic.endswith(topic_suffix):
                return topic, payload, retain
        raise AssertionError

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def seed(peer, rt, statuses):
    changes = [
        protocol.WristbandChange(
            version=i + 1,
            entity="wristband",
            op="upsert",
            key=uid,
            data=protocol.WristbandData(status=s),
        )
        for i, (uid, s) in enumerate(statuses.items())
    ]
    topics = rt.topics
    peer.next("catalog/req")
    page = protocol.CatalogPage(
        from_version=0, to_version=len(changes), head=len(changes), changes=changes
    )
    peer.publish(topics.catalog_page("gate-1"), protocol.encode(page))
    assert wait_until(lambda: rt.store.catalog_version == len(changes), 5)
