"""The electronic queue's part of a simulated site: dispensers and display boards as real
daemons beside the gates, central's queue, staff at counters, and a network cut.

:class:`QueueSite` extends :class:`~entrada.site.Site`. Every process shares one
simulated time line (``[simtime]``: a day can pass in a minute), dispensers run on
simulated printers and buttons, display boards on SDL's dummy video driver and a simulated
sound output. A dispenser with ``cut_off_able`` reaches the broker through a
:class:`~entrada.tcp_proxy.TcpProxy` that :meth:`QueueSite.cut` and :meth:`QueueSite.
restore` cut and mend. :class:`Staff` sends counter operations the way a counter
terminal does (MQTT 5 request/response).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import tomli_w
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from entrada import protocol
from entrada.errors import EntradaError
from entrada.mqtt import no_delay
from entrada.protocol_queue import QueueOp, QueueOpResult, QueueTopics
from entrada.site import Site, _ro
from entrada.tcp_proxy import TcpProxy


@dataclass(frozen=True)
class DispenserSpec:
    id: str
    #: Button name -> service id.
    buttons: dict[str, str]
    #: Reach the broker through a proxy that can be cut.
    cut_off_able: bool = False
    lease_size: int = 50
    lease_low: int = 20


@dataclass
class QueueSetup:
    """Central's ``[queue]`` section and the site's simulated time line."""

    queue: dict[str, Any]
    #: Simulated Unix time at start, and simulated seconds per real second.
    origin: float
    speed: float = 1.0
    displays: list[str] = field(default_factory=list)
    dispensers: list[DispenserSpec] = field(default_factory=list)
    clip_seconds: float = 0.02
    #: Silence between two announcements (a simulated day calls far faster than a real one).
    announce_gap: float = 0.05


class QueueSite(Site):
    def __init__(self, workdir: Path, setup: QueueSetup, **kwargs: Any) -> None:
        super().__init__(workdir, kwargs.pop("gates", []), **kwargs)
        self.setup = setup
        self.anchor = time.time()
        self.proxies: dict[str, TcpProxy] = {}

    # ------------------------------------------------------------------ configs

    def device_ids(self) -> list[str]:
        return [
            *super().device_ids(),
            *(d.id for d in self.setup.dispensers),
            *self.setup.displays,
        ]

    def simtime(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "origin": self.setup.origin, "speed": self.setup.speed}

    def sim_now(self) -> float:
        """The site's simulated time now."""
        return self.setup.origin + (time.time() - self.anchor) * self.setup.speed

    def central_extra(self) -> dict[str, Any]:
        return {
            "central": {
                "site": self.site_id,
                "data_dir": str(self.workdir / "central"),
                "clock": "sim",
            },
            "queue": self.setup.queue,
            "simtime": self.simtime(),
        }

    def device_db(self, device_id: str) -> Path:
        return self.workdir / device_id / "device.db"

    def write_configs(self) -> None:
        super().write_configs()
        tz = self.setup.queue.get("timezone", "UTC")
        for d in self.setup.dispensers:
            port = self.broker.port
            if d.cut_off_able:
                proxy = self.proxies.get(d.id)
                if proxy is None:
                    proxy = self.proxies[d.id] = TcpProxy(self.broker.port).start()
                port = proxy.port
            doc = self._device_doc(d.id, "dispenser", port)
            doc["dispenser"] = {
                "site_name": self.setup.queue.get("site_name", ""),
                "buttons": d.buttons,
                "timezone": tz,
                "status_url": "http://127.0.0.1:8080/t/{ticket}",
                "request_timeout": 1.5,
                "lease_size": d.lease_size,
                "lease_low": d.lease_low,
            }
            doc["drivers"] = {
                "printer": "sim",
                "buttons": "sim",
                "indicator": "sim",
                "sim": {"buttons": sorted(d.buttons)},
            }
            (self.workdir / f"{d.id}.toml").write_text(tomli_w.dumps(doc))
        for display in self.setup.displays:
            doc = self._device_doc(display, "display", self.broker.port)
            doc["display"] = {
                "fullscreen": False,
                "video_driver": "dummy",
                "timezone": tz,
                "clips_dir": str(self.workdir / "voice"),
                "fps": 10,
                "announce_gap": self.setup.announce_gap,
            }
            doc["drivers"] = {"sound": "sim", "sim": {"clip_seconds": self.setup.clip_seconds}}
            (self.workdir / f"{display}.toml").write_text(tomli_w.dumps(doc))

    def _device_doc(self, device_id: str, role: str, port: int) -> dict[str, Any]:
        return {
            "device": {
                "id": device_id,
                "site": self.site_id,
                "role": role,
                "data_dir": str(self.workdir / device_id),
                "run_dir": str(self.run_dir),
                "clock": "sim",
            },
            "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_max": 2.0},
            "outbox": {"ack_timeout": 2.0, "backoff_max": 5.0},
            "simtime": self.simtime(),
            "log": {"level": self.log_level},
        }

    # ---------------------------------------------------------------- processes

    def start(self) -> None:
        try:
            super().start()
            devices = [d.id for d in self.setup.dispensers] + self.setup.displays
            for device in devices:
                self.start_device(device)
            self._wait(lambda: self.online(devices), 30, "dispensers and boards online")
        except BaseException:
            self.stop()
            raise

    def start_device(self, device_id: str) -> None:
        self._spawn(device_id, ["device", "--config", str(self.workdir / f"{device_id}.toml")])
        if any(d.id == device_id for d in self.setup.dispensers):
            sock = self.run_dir / "sim" / f"{device_id}.sock"
            self._wait(sock.exists, 20, f"{device_id} simulator channel")

    def stop(self) -> None:
        super().stop()
        for proxy in self.proxies.values():
            proxy.stop()

    def online(self, devices: list[str]) -> bool:
        """Central has each of ``devices`` online (a board that is not cannot confirm)."""
        with _ro(self.central_db()) as conn:
            rows = conn.execute("SELECT device FROM devices WHERE state = 'online'").fetchall()
        return set(devices) <= {r[0] for r in rows}

    def cut(self, device_id: str) -> None:
        self.proxies[device_id].cut()

    def restore(self, device_id: str) -> None:
        self.proxies[device_id].restore()

    # ------------------------------------------------------------------- input

    def press(self, dispenser: str, button: str) -> None:
        reply = self._client(dispenser).press(button)
        if not reply.get("ok"):
            raise EntradaError(f"press refused by {dispenser}: {reply.get('error')}")

    def printer(self, dispenser: str, **faults: Any) -> dict[str, Any]:
        return self._client(dispenser).request(verb="printer", **faults)

    # ----------------------------------------------------------------- results

    def queue_db(self) -> Path:
        return self.workdir / "central" / "queue.db"

    def printed_events(self) -> list[dict[str, Any]]:
        """Every ``queue.ticket_printed`` event central stored, with its device."""
        with _ro(self.central_db()) as conn:
            rows = conn.execute(
                "SELECT device, data FROM events WHERE kind = 'queue.ticket_printed'"
            ).fetchall()
        return [{"device": device, **json.loads(data)} for device, data in rows]

    def dispenser_events(self, device_id: str, kind: str) -> int:
        """Events of ``kind`` a dispenser or display has produced (from its own store: the
        outbox keeps unacknowledged ones, the stream counter all of them is not per kind,
        so this reads central's copy)."""
        with _ro(self.central_db()) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM events WHERE device = ? AND kind = ?", (device_id, kind)
            ).fetchone()
        return int(row[0])


class Staff:
    """A counter terminal: sends :class:`QueueOp` over MQTT 5 and waits for the answer."""

    def __init__(self, site: str, port: int, name: str = "", host: str = "127.0.0.1") -> None:
        self.name = name or f"staff-{secrets.token_hex(4)}"
        self.topics = QueueTopics(protocol.Topics(site))
        self.reply_topic = self.topics.op_reply(self.name)
        self._answers: dict[bytes, QueueOpResult] = {}
        self._cond = threading.Condition()
        self._client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=self.name, protocol=paho.MQTTv5
        )
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        no_delay(client)  # a counter's operation is one small write: send it now
        client.subscribe(self.reply_topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None)
        if correlation is None:
            return
        try:
            result = protocol.decode(QueueOpResult, msg.payload)
        except EntradaError:
            return
        with self._cond:
            self._answers[bytes(correlation)] = result
            self._cond.notify_all()

    def op(
        self, op: str, op_id: str | None = None, timeout: float = 5.0, **args: Any
    ) -> QueueOpResult | None:
        """Send one operation; its answer, or None when central does not answer in time
        (retry with the same ``op_id``: it is applied once)."""
        request = QueueOp(op_id=op_id or f"{self.name}-{secrets.token_hex(8)}", op=op, args=args)
        correlation = secrets.token_bytes(8)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation
        self._client.publish(
            self.topics.op_request, protocol.encode(request), qos=1, properties=props
        )
        deadline = time.monotonic() + timeout
        with self._cond:
            while correlation not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._answers.pop(correlation)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def queue_rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read central's queue store (read-only) while it runs."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
