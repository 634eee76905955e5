"""MqttLink against a real Mosquitto: events, reconnects, epochs, the will, MQTT 5."""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from entrada.broker import PrivateBroker
from entrada.mqtt import Incoming, LinkDown, LinkUp, MqttLink, Will
from entrada.settings_common import MqttSection

TIMEOUT = 5.0


class Recorder:
    """The on_event callback: only enqueues, noting the thread it was called on."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue()
        self.seen: list[object] = []
        self.threads: set[str] = set()

    def __call__(self, event: object) -> None:
        self._queue.put((threading.current_thread().name, event))

    def poll(self, kind: type, where: Callable[[Any], bool], timeout: float) -> Any:
        """The next event of ``kind`` matching ``where``, or None after ``timeout`` seconds.
        Every event taken from the queue is kept in ``seen``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                thread, event = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            self.seen.append(event)
            self.threads.add(thread)
            if isinstance(event, kind) and where(event):
                return event

    def next(self, kind: type, where: Callable[[Any], bool] = lambda _e: True) -> Any:
        event = self.poll(kind, where, TIMEOUT)
        if event is None:
            pytest.fail(f"no {kind.__name__} within {TIMEOUT} s; saw {self.seen}")
        return event

    def message(self, topic: str, payload: bytes | None = None) -> Incoming:
        return self.next(Incoming, matching(topic, payload))

    def messages(self, topic: str) -> list[Incoming]:
        return [e for e in self.seen if isinstance(e, Incoming) and e.topic == topic]

    def messages_under(self, prefix: str) -> list[Incoming]:
        return [e for e in self.seen if isinstance(e, Incoming) and e.topic.startswith(prefix)]


def matching(topic: str, payload: bytes | None = None) -> Callable[[Incoming], bool]:
    return lambda m: m.topic == topic and (payload is None or m.payload == payload)


Factory = Callable[..., tuple[MqttLink, Recorder]]


def link_factory(broker_of: Callable[[], PrivateBroker]) -> Iterator[Factory]:
    links: list[MqttLink] = []

    def make(client_id: str, subs: list[str] = (), start: bool = True, **kwargs: Any):
        b = broker_of()
        cfg = MqttSection(
            host=b.host,
            port=kwargs.pop("port", b.port),
            keepalive=5,
            reconnect_min=kwargs.pop("reconnect_min", 0.05),
            reconnect_max=0.5,
        )
        rec = Recorder()
        link = MqttLink(client_id, cfg, rec, [(t, 1) for t in subs], **kwargs)
        links.append(link)
        if start:
            link.start()
        return link, rec

    yield make
    for link in links:
        link.stop()


def ready(link: MqttLink, rec: Recorder, topic: str) -> None:
    """Round-trip probes through ``topic`` until one is back: the subscription is live.

    A probe may overtake the SUBSCRIBE queued at connect (see the thread-ownership bug
    below), so a lost probe is retried rather than failing the test."""
    if not any(isinstance(e, LinkUp) for e in rec.seen):
        rec.next(LinkUp)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        probe = f"probe-{time.monotonic_ns()}".encode()
        assert link.publish(topic, probe)
        if rec.poll(Incoming, matching(topic, probe), timeout=0.5) is not None:
            return
    pytest.fail(f"no probe came back through {topic}")


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path_factory.mktemp("mqtt")) as b:
        yield b


@pytest.fixture
def own_broker(tmp_path) -> Iterator[PrivateBroker]:
    """A broker this test may SIGKILL and restart."""
    with PrivateBroker(tmp_path) as b:
        yield b


@pytest.fixture
def make_link(shared_broker) -> Iterator[Factory]:
    yield from link_factory(lambda: shared_broker)


@pytest.fixture
def make_own_link(own_broker) -> Iterator[Factory]:
    yield from link_factory(lambda: own_broker)


# --------------------------------------------------------------------------- events


def test_link_up_then_incoming_on_the_link_thread(make_link):
    link, rec = make_link("ev-sub", ["t/ev/in/#"])
    pub, pub_rec = make_link("ev-pub")
    pub_rec.next(LinkUp)
    ready(link, rec, "t/ev/in/probe")

    assert pub.publish("t/ev/other", b"not subscribed")
    assert pub.publish("t/ev/in/x", b"hello", qos=0)

    msg = rec.message("t/ev/in/x")
    assert (msg.payload, msg.retain, msg.response_topic, msg.correlation) == (
        b"hello",
        False,
        None,
        None,
    )
    assert isinstance(rec.seen[0], LinkUp) and rec.seen[0].session_present is False
    assert not rec.messages("t/ev/other")
    assert rec.threads == {"mqtt-ev-sub"}
    assert link.connected and link.epoch == rec.seen[0].epoch == 1


def test_subscribe_after_connect_takes_effect(make_link):
    link, rec = make_link("late-sub")
    rec.next(LinkUp)

    link.subscribe("t/late/x")

    ready(link, rec, "t/late/x")


def test_retained_message_arrives_with_its_flag(make_link):
    pub, pub_rec = make_link("ret-pub", ["t/ret/x"])
    ready(pub, pub_rec, "t/ret/x")
    assert pub.publish("t/ret/x", b"kept", retain=True)
    pub_rec.message("t/ret/x", b"kept")  # back from the broker: stored by now
    _, rec = make_link("ret-sub", ["t/ret/x"])

    assert rec.message("t/ret/x").retain is True


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({}, (None, None, None)),
        (
            {
                "ResponseTopic": "t/p/res",
                "CorrelationData": b"\x00\x01corr",
                "MessageExpiryInterval": 60,
            },
            ("t/p/res", b"\x00\x01corr", 60),
        ),
        ({"ResponseTopic": "t/p/res"}, ("t/p/res", None, None)),
    ],
    ids=["none", "all", "response-topic-only"],
)
def test_mqtt5_properties_arrive(make_link, props, expected):
    link, rec = make_link("props", ["t/p/req"], clean_start=True)
    ready(link, rec, "t/p/req")
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in props.items():
        setattr(properties, name, value)

    assert link.publish("t/p/req", b"cmd", properties=properties)

    msg = rec.message("t/p/req", b"cmd")
    response_topic, correlation, expiry = expected
    assert (msg.response_topic, msg.correlation) == (response_topic, correlation)
    if expiry is None:
        assert msg.expiry is None
    else:
        assert 0 < msg.expiry <= expiry  # the broker counts down what is left


# ------------------------------------------------------------------ outages, epochs


def test_reconnects_after_broker_kill_with_a_larger_epoch_each_time(own_broker, make_own_link):
    link, rec = make_own_link("rc", ["t/rc"], epoch_source=itertools.count(100).__next__)
    epochs = [rec.next(LinkUp).epoch]

    for _ in range(2):
        own_broker.kill()
        rec.next(LinkDown)
        assert not link.connected
        own_broker.start()
        epochs.append(rec.next(LinkUp).epoch)
        ready(link, rec, "t/rc")  # subscriptions are renewed on every connect

    assert epochs[0] == 100
    assert epochs == sorted(set(epochs))
    assert link.epoch == epochs[-1]


def test_publish_is_refused_while_down_and_never_sent_later(own_broker, make_own_link):
    link, rec = make_own_link("down", ["t/down/probe"])
    ready(link, rec, "t/down/probe")
    own_broker.kill()
    rec.next(LinkDown)

    assert link.publish("t/down/lost", b"lost", retain=True) is False
    assert not link._client._out_messages  # paho holds nothing to resend

    own_broker.start()
    rec.next(LinkUp)
    assert link.publish("t/down/sentinel", b"after", retain=True)
    _, watch = make_own_link("down-watch", ["t/down/lost", "t/down/sentinel"])
    watch.message("t/down/sentinel")
    assert not watch.messages("t/down/lost")  # it would have come before the sentinel


def test_publish_is_refused_before_the_first_connect(make_link):
    link, _ = make_link("never", port=1, reconnect_min=5)  # nothing listens on port 1

    assert link.publish("t/never", b"x") is False
    assert not link.connected


# ---------------------------------------------------------------------------- will

WILL_TOPIC = "t/will/status"


def will_of(epoch: int) -> Will:
    return Will(WILL_TOPIC, f"offline {epoch}".encode())


def test_will_is_published_retained_with_the_epoch_of_the_connect_that_died(make_link):
    watcher, watch = make_link("will-watch", [WILL_TOPIC])
    ready(watcher, watch, WILL_TOPIC)
    link, rec = make_link("will-dies", will=will_of)
    epochs = []

    for _ in range(2):
        epochs.append(rec.next(LinkUp).epoch)
        link._client.socket().shutdown(socket.SHUT_RDWR)  # the connection dies, no DISCONNECT
        will = watch.message(WILL_TOPIC, f"offline {epochs[-1]}".encode())
        assert will.retain is False  # live delivery
        rec.next(LinkDown)

    assert epochs[1] > epochs[0]
    _, late = make_link("will-late", [WILL_TOPIC])
    kept = late.message(WILL_TOPIC)
    assert (kept.payload, kept.retain) == (f"offline {epochs[1]}".encode(), True)


def test_will_is_not_published_on_a_clean_stop(make_link):
    watcher, watch = make_link("stop-watch", [WILL_TOPIC + "/clean"])
    ready(watcher, watch, WILL_TOPIC + "/clean")
    link, rec = make_link("stop-clean", will=lambda e: Will(WILL_TOPIC + "/clean", b"offline"))
    rec.next(LinkUp)

    link.stop()
    assert watcher.publish(WILL_TOPIC + "/clean", b"sentinel")

    watch.message(WILL_TOPIC + "/clean", b"sentinel")
    assert b"offline" not in [m.payload for m in watch.messages(WILL_TOPIC + "/clean")]


# -------------------------------------------------------------------------- session


def test_persistent_session_keeps_messages_while_stopped(make_link):
    link, rec = make_link("sess", ["t/sess/#"])
    ready(link, rec, "t/sess/probe")
    link.stop()
    pub, pub_rec = make_link("sess-pub")
    pub_rec.next(LinkUp)
    for n in range(3):
        assert pub.publish(f"t/sess/{n}", b"%d" % n, qos=1)

    _, rec2 = make_link("sess", ["t/sess/#"])

    assert rec2.next(LinkUp).session_present is True
    queued = {b"0", b"1", b"2"}
    rec2.next(Incoming, lambda _m: queued <= {m.payload for m in rec2.messages_under("t/sess/")})


# ----------------------------------------------------------------------------- stop


def test_stop_is_prompt_and_ends_the_thread(make_link):
    link, rec = make_link("stopper")
    rec.next(LinkUp)

    started = time.monotonic()
    link.stop()

    assert time.monotonic() - started < 1.0
    assert not link._thread.is_alive()
    assert not link.connected
    assert link.publish("t/x", b"x") is False


def test_stop_during_backoff_is_prompt(make_link):
    link, _ = make_link("backoff", port=1, reconnect_min=30)

    started = time.monotonic()
    link.stop()

    assert time.monotonic() - started < 1.0
    assert not link._thread.is_alive()


def test_stop_without_start_is_harmless(make_link):
    link, _ = make_link("unstarted", start=False)

    link.stop()

    assert not link.connected


# ------------------------------------------------------------------- thread ownership


def test_only_the_link_thread_writes_to_the_socket(make_link):
    link, rec = make_link("writer", ["t/writer"])
    ready(link, rec, "t/writer")
    writers: set[str] = set()
    send = link._client._sock_send

    def spy(buf: bytes) -> int:
        writers.add(threading.current_thread().name)
        return send(buf)

    link._client._sock_send = spy

    link.subscribe("t/writer/more")
    for n in range(20):
        assert link.publish("t/writer", b"%d" % n)
        rec.message("t/writer", b"%d" % n)

    assert writers == {"mqtt-writer"}
