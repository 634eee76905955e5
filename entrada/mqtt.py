"""The MQTT link shared by the device daemon and the central service.

paho-mqtt 2.x, MQTT 5, a persistent session, and a network thread of our own that
connects, reconnects with exponential backoff and full jitter, and hands everything it
receives to the owner thread as plain events (:class:`LinkUp`, :class:`LinkDown`,
:class:`Incoming`). Callbacks are set before connect (a resumed session delivers queued
messages at once) and never do work on paho's thread.

Publishing is refused while disconnected instead of letting paho queue the message in
memory: the durable outbox, not RAM, is what carries events across an outage.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from entrada.settings_common import MqttSection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkUp:
    """Connected (CONNACK accepted); ``epoch`` is the connect's number for birth/will."""

    epoch: int
    session_present: bool


@dataclass(frozen=True)
class LinkDown:
    reason: str


@dataclass(frozen=True)
class Incoming:
    """A message as received, with the MQTT 5 request/response properties."""

    topic: str
    payload: bytes
    retain: bool
    response_topic: str | None = None
    correlation: bytes | None = None
    expiry: int | None = None


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


#: Builds the will for a connect attempt from that connect's epoch.
WillFactory = Callable[[int], Will]
#: Returns the next connect epoch (strictly increasing, survives restarts).
EpochSource = Callable[[], int]


class MqttLink:
    """One MQTT connection kept up by a thread of its own."""

    def __init__(
        self,
        client_id: str,
        cfg: MqttSection,
        on_event: Callable[[object], None],
        subscriptions: Sequence[tuple[str, int]] = (),
        *,
        will: WillFactory | None = None,
        epoch_source: EpochSource | None = None,
        clean_start: bool = False,
        max_queued: int = 1000,
    ) -> None:
        self.client_id = client_id
        self.cfg = cfg
        self._on_event = on_event
        self._subscriptions = list(subscriptions)
        self._will = will
        self._epoch_source = epoch_source or _counter()
        self._clean_start = clean_start
        self._stop = threading.Event()
        self._disconnected = threading.Event()
        self._connected = False
        self._epoch = 0
        self._thread: threading.Thread | None = None
        self._outage_logged = False

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
        client.username_pw_set(
            cfg.username or client_id,
            cfg.password.get_secret_value() if cfg.password else None,
        )
        if cfg.tls_ca is not None:
            client.tls_set(ca_certs=str(cfg.tls_ca))
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(max_queued)
        # paho writes to the socket on the publishing thread when it runs no loop thread of
        # its own; with ours, that would interleave bytes with the network thread's writes
        # (malformed packets under load). Registering a write hook makes paho only queue:
        # the network thread's loop() does every write.
        client.on_socket_register_write = _only_queue
        # Callbacks before connect: a resumed session delivers at once.
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    # ------------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def epoch(self) -> int:
        return self._epoch

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{self.client_id}", daemon=True
        )
        self._thread.start()

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> bool:
        """Hand a message to paho; False (and nothing queued) while disconnected."""
        if not self._connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def subscribe(self, topic: str, qos: int = 1) -> None:
        """Add a subscription now (if connected) and on every later connect."""
        self._subscriptions.append((topic, qos))
        if self._connected:
            self._client.subscribe(topic, qos)

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (the will is not sent) and end the network thread."""
        self._stop.set()
        if self._connected:
            self._client.disconnect()
            self._disconnected.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        self._connected = False

    # ------------------------------------------------------------- network thread

    def _run(self) -> None:
        delay = self.cfg.reconnect_min
        first = True
        while not self._stop.is_set():
            self._disconnected.clear()
            established = False
            try:
                self._epoch = self._epoch_source()
                if self._will is not None:
                    w = self._will(self._epoch)
                    self._client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.cfg.session_expiry
                if first:
                    self._client.connect(
                        self.cfg.host,
                        self.cfg.port,
                        keepalive=self.cfg.keepalive,
                        clean_start=self._clean_start,
                        properties=props,
                    )
                    first = False
                else:
                    self._client.reconnect()
                no_delay(self._client)
                while not self._stop.is_set():
                    rc = self._client.loop(timeout=0.1)
                    established = established or self._connected
                    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        break
            except (OSError, ValueError, paho.WebsocketConnectionError) as err:
                if not self._outage_logged:
                    logger.warning(
                        "mqtt %s: cannot reach %s:%d: %s",
                        self.client_id,
                        self.cfg.host,
                        self.cfg.port,
                        err,
                    )
                    self._outage_logged = True
            if self._connected:
                self._set_down("connection lost")
            if self._stop.is_set():
                # finish a clean disconnect started by stop()
                for _ in range(20):
                    if self._disconnected.is_set():
                        break
                    self._client.loop(timeout=0.05)
                break
            if established:
                delay = self.cfg.reconnect_min
            wait = random.uniform(delay / 2, delay)
            delay = min(delay * 2, self.cfg.reconnect_max)
            self._stop.wait(wait)

    def _set_down(self, reason: str) -> None:
        self._connected = False
        self._on_event(LinkDown(reason))

    # ------------------------------------------------------------ paho callbacks

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            logger.error("mqtt %s: connection refused: %s", self.client_id, reason)
            return
        for topic, qos in self._subscriptions:
            client.subscribe(topic, qos)
        self._connected = True
        if self._outage_logged:
            logger.info("mqtt %s: connected again", self.client_id)
            self._outage_logged = False
        else:
            logger.info("mqtt %s: connected to %s:%d", self.client_id, self.cfg.host, self.cfg.port)
        self._on_event(LinkUp(self._epoch, bool(flags.session_present)))

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._disconnected.set()
        if self._connected:
            if not self._stop.is_set() and not self._outage_logged:
                logger.warning("mqtt %s: disconnected: %s", self.client_id, reason)
                self._outage_logged = True
            self._set_down(str(reason))

    def _handle_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        self._on_event(
            Incoming(
                topic=msg.topic,
                payload=bytes(msg.payload),
                retain=bool(msg.retain),
                response_topic=getattr(props, "ResponseTopic", None),
                correlation=getattr(props, "CorrelationData", None),
                expiry=getattr(props, "MessageExpiryInterval", None),
            )
        )


def no_delay(client: paho.Client) -> None:
    """Turn Nagle's algorithm off: an event batch or an ack is one small write that must go
    now, not after the peer's delayed ACK (tens of ms per hop on loopback and LAN)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _only_queue(client: paho.Client, userdata: Any, sock: Any) -> None:
    """paho's write hook: nothing to do, the network thread's select() sees pending data."""


def _counter() -> EpochSource:
    state = {"n": 0}

    def nxt() -> int:
        state["n"] += 1
        return state["n"]

    return nxt
