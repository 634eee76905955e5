"""The MQTT link of the technicians' and staff's tools, and the account it logs in with.

:class:`TechLink` is a short-lived MQTT 5 client for one command (``entrada tech``,
``entrada queue``); :meth:`TechLink.request` is their MQTT 5 request/response exchange and
:func:`connect` opens a link to a central config's site broker. :func:`broker_login` picks
its account: a provisioned service
account's ``mqtt.toml`` (``--account FILE`` or ``ENTRADA_MQTT_ACCOUNT``, written by
``entrada provision --service NAME --kind technician|staff``), whose ``[mqtt]`` connection
(host, port, username, password, CA) replaces the one in central's config; else central's
own ``[mqtt] username`` (or client id). The site broker makes every client id its username
(``use_username_as_clientid``), so a tool on central's account pushes central off the
broker while it runs: with central's password in hand (a secured broker) the tool says so
and names the fix. Passwords are never printed.
"""

from __future__ import annotations

import argparse
import math
import os
import queue
import secrets
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from entrada import config as configlib
from entrada.errors import ConfigError, EntradaError
from entrada.mqtt import Incoming, no_delay
from entrada.protocol import Topics
from entrada.settings_common import MqttSection

#: A provisioned service account's ``mqtt.toml`` (``--account``).
ACCOUNT_ENV = "ENTRADA_MQTT_ACCOUNT"
#: The ``[mqtt]`` keys an account file brings; the rest (keepalive...) stays central's.
ACCOUNT_KEYS = ("host", "port", "username", "password", "tls_ca")
CONNECT_TIMEOUT = 10.0


class TechLink:
    """A short-lived MQTT 5 client (clean start, no session kept): paho's own loop
    thread only enqueues what arrives on :attr:`messages`."""

    def __init__(self, cfg: MqttSection, username: str, client_id: str | None = None) -> None:
        self.cfg = cfg
        self.username = username
        self.client_id = client_id or f"tech-{secrets.token_hex(4)}"
        self.messages: queue.Queue[Incoming] = queue.Queue()
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._refused: str | None = None
        self._acks = threading.Condition()
        self._subacks: dict[int, list[Any]] = {}
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=paho.MQTTv5
        )
        client.username_pw_set(username, cfg.password.get_secret_value() if cfg.password else None)
        if cfg.tls_ca is not None:
            client.tls_set(ca_certs=str(cfg.tls_ca))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    def open(self, timeout: float = CONNECT_TIMEOUT) -> TechLink:
        where = f"{self.cfg.host}:{self.cfg.port}"
        try:
            self._client.connect(
                self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive, clean_start=True
            )
        except (OSError, ValueError) as err:
            raise EntradaError(f"cannot reach the broker at {where}: {err}") from err
        self._client.loop_start()
        if not self._connected.wait(timeout) or self._refused is not None:
            self.close()
            raise EntradaError(
                f"the broker at {where} refused the connection: {self._refused}"
                if self._refused
                else f"no answer from the broker at {where} within {timeout:.0f} s"
            )
        return self

    def subscribe(self, topics: Sequence[str], timeout: float = CONNECT_TIMEOUT) -> None:
        """Subscribe at QoS 1 and wait for the broker to grant every topic."""
        options = SubscribeOptions(qos=1)
        result, mid = self._client.subscribe([(t, options) for t in topics])
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise EntradaError(f"cannot subscribe: {paho.error_string(result)}")
        with self._acks:
            if not self._acks.wait_for(lambda: mid in self._subacks, timeout):
                raise EntradaError(f"the broker did not confirm the subscription to {topics}")
            codes = self._subacks.pop(mid)
        refused = [t for t, code in zip(topics, codes, strict=False) if code.is_failure]
        if refused:
            raise EntradaError(f"not allowed to read {', '.join(refused)}")

    def publish(
        self,
        topic: str,
        payload: bytes,
        properties: Properties | None = None,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Publish at QoS 1, not retained, and wait for the broker's PUBACK."""
        info = self._client.publish(topic, payload, qos=1, retain=False, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise EntradaError(f"cannot publish on {topic}: {paho.error_string(info.rc)}")
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise EntradaError(f"the broker did not take the message on {topic}")

    def request(
        self, topic: str, payload: bytes, reply_topic: str, *, expiry: float, timeout: float
    ) -> Incoming | None:
        """Publish ``payload`` on ``topic`` as an MQTT 5 request (ResponseTopic
        ``reply_topic``, random CorrelationData, MessageExpiryInterval ``expiry``) and wait up
        to ``timeout`` for the answer carrying our correlation data (None: no answer)."""
        self.subscribe([reply_topic])  # before the request, so the answer cannot slip by
        correlation = secrets.token_bytes(16)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = correlation
        props.MessageExpiryInterval = max(1, math.ceil(expiry))
        self.publish(topic, payload, props)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if msg.topic == reply_topic and msg.correlation == correlation:
                return msg  # anything else is another requester's answer
        return None

    def close(self) -> None:
        if self._connected.is_set():
            self._client.disconnect()
            self._disconnected.wait(2.0)
        self._client.loop_stop()

    def __enter__(self) -> TechLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # paho's thread: record and enqueue, nothing else

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:
            no_delay(client)  # one small request each: do not wait for a delayed ACK
        self._connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._disconnected.set()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, codes: Any, properties: Any
    ) -> None:
        with self._acks:
            self._subacks[mid] = list(codes)
            self._acks.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        self.messages.put(
            Incoming(
                topic=msg.topic,
                payload=bytes(msg.payload),
                retain=bool(msg.retain),
                response_topic=getattr(props, "ResponseTopic", None),
                correlation=getattr(props, "CorrelationData", None),
                expiry=getattr(props, "MessageExpiryInterval", None),
            )
        )


# ---------------------------------------------------------------------- account


def account_mqtt(central: MqttSection, path: str | Path) -> MqttSection:
    """Central's ``[mqtt]`` with the connection of the account file ``path`` (a provisioned
    ``mqtt.toml``) in its place. A ``tls_ca`` that does not exist here is taken from the
    ``ca.crt`` beside the file (the bundle as provisioned, not yet installed)."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("mqtt")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([f"cannot read the account file: {err}"], str(path)) from err
    if not isinstance(table, dict) or not table.get("username"):
        raise ConfigError(
            ["no [mqtt] table with a username: not a provisioned account's mqtt.toml"], str(path)
        )
    merged = {k: v for k, v in central.model_dump().items() if k not in ACCOUNT_KEYS}
    merged |= {k: v for k, v in table.items() if k in ACCOUNT_KEYS}
    beside = path.parent / "ca.crt"
    ca = merged.get("tls_ca")
    if isinstance(ca, str) and not Path(ca).exists() and beside.is_file():
        merged["tls_ca"] = str(beside)
    return configlib.validate(MqttSection, merged, str(path))


def broker_login(cfg: Any, account: str | Path | None = None) -> tuple[MqttSection, str]:
    """The ``[mqtt]`` settings and username a tool connects with: the account file
    (``account``, else ``$ENTRADA_MQTT_ACCOUNT``) when there is one, else central's own."""
    account = account or os.environ.get(ACCOUNT_ENV) or None
    if account is not None:
        mqtt = account_mqtt(cfg.mqtt, account)
        return mqtt, str(mqtt.username)
    username = cfg.mqtt.username or cfg.central.client_id
    if cfg.mqtt.password is not None:
        sys.stderr.write(
            f"entrada: warning: connecting with central's MQTT account ({username}); the site "
            "broker makes client ids from usernames, so this pushes central off the broker "
            f"while the command runs. Use your own account: --account FILE or ${ACCOUNT_ENV} "
            "(entrada provision --service NAME --kind technician, or staff)\n"
        )
    return cfg.mqtt, username


def add_account_option(parser: argparse.ArgumentParser) -> None:
    """``--account FILE``: the MQTT account to connect with (see :func:`broker_login`)."""
    parser.add_argument(
        "--account",
        metavar="FILE",
        help=f"your provisioned account's mqtt.toml (default ${ACCOUNT_ENV}; "
        "else central's account)",
    )


@contextmanager
def connect(
    cfg: Any, *, client_id: str | None = None, account: str | Path | None = None
) -> Iterator[tuple[TechLink, Topics]]:
    """A link to the site broker of central config ``cfg``, and the site's topics
    (``client_id``: default a fresh ``tech-...``; other tools pass their own fresh one;
    ``account``: a provisioned account's ``mqtt.toml``, see :func:`broker_login`)."""
    mqtt, username = broker_login(cfg, account)
    link = TechLink(mqtt, username, client_id).open()
    try:
        yield link, Topics(cfg.central.site)
    finally:
        link.close()
