import json

import pytest

from controller.outbox import OutboxSender, encode_batch
from controller.settings import OutboxSection
from controller.store import DeviceStore
from entrada import protocol


class Link:
    """Records what the sender published; can be 'down'."""

    def __init__(self):
        self.up = True
        self.sent = []

    def publish(self, topic, payload):
        if not self.up:
            return False
        self.sent.append(protocol.decode(protocol.EventBatch, payload))
        return True

    def seqs(self):
        return [e.seq for batch in self.sent for e in batch.events]


@pytest.fixture
def store(tmp_path):
    s = DeviceStore(tmp_path / "device.db")
    yield s
    s.close()


def emit(store, n):
    stream = store.stream_name("gate")
    with store.transaction() as tx:
        for i in range(n):
            tx.emit(stream, "gate.passage", 1.0 + i, {"uid": f"04{i:06X}"})
    return stream


def sender(store, link, **cfg):
    opts = {"batch_size": 10, "max_inflight": 30, "ack_timeout": 1.0, "backoff_max": 4.0}
    opts.update(cfg)
    return OutboxSender(store, OutboxSection(**opts), "gate-1", "t/events", link.publish)


def test_sends_in_batches_within_window(store):
    link = Link()
    emit(store, 100)
    s = sender(store, link)
    s.pump(0.0)
    assert [len(b.events) for b in link.sent] == [10, 10, 10]
    assert s.inflight_events == 30


def test_ack_deletes_and_opens_window(store):
    link = Link()
    stream = emit(store, 50)
    s = sender(store, link)
    s.pump(0.0)
    assert s.on_ack({stream: 25}) == 25
    assert store.outbox_depth() == 25
    s.pump(0.1)
    assert link.seqs()[30:] == list(range(31, 51))


def test_unacked_batch_is_resent_with_backoff(store):
    link = Link()
    emit(store, 5)
    s = sender(store, link)
    s.pump(0.0)
    s.pump(0.9)
    assert len(link.sent) == 1
    s.pump(1.0)  # ack_timeout
    assert len(link.sent) == 2
    s.pump(2.9)  # next attempt after 2 s
    assert len(link.sent) == 2
    s.pump(3.0)
    s.pump(7.0)
    s.pump(11.0)  # capped at backoff_max = 4 s
    assert len(link.sent) == 5


def test_nothing_is_lost_while_link_is_down(store):
    link = Link()
    link.up = False
    stream = emit(store, 20)
    s = sender(store, link)
    s.pump(0.0)
    assert link.sent == [] and store.outbox_depth() == 20
    link.up = True
    s.reset()
    s.pump(1.0)
    assert link.seqs() == list(range(1, 21))
    s.on_ack({stream: 20})
    assert store.outbox_depth() == 0


def test_partial_ack_resends_only_the_rest(store):
    link = Link()
    stream = emit(store, 10)
    s = sender(store, link)
    s.pump(0.0)
    s.on_ack({stream: 6})
    s.pump(5.0)
    assert [e.seq for e in link.sent[-1].events] == [7, 8, 9, 10]


def test_stale_ack_is_ignored(store):
    link = Link()
    stream = emit(store, 10)
    s = sender(store, link)
    s.pump(0.0)
    s.on_ack({stream: 8})
    assert s.on_ack({stream: 3}) == 0
    assert store.outbox_depth() == 2


def test_restart_resends_everything_unacked(store):
    link = Link()
    emit(store, 10)
    sender(store, link).pump(0.0)
    fresh = sender(store, link)
    fresh.pump(0.0)
    assert link.seqs() == list(range(1, 11)) * 2


def test_encoded_batch_is_valid_protocol():
    from controller.store import OutboxRow

    rows = [OutboxRow("gate.abcd", 1, "0" * 32, "gate.passage", 1.25, json.dumps({"u": "é"}))]
    batch = protocol.decode(protocol.EventBatch, encode_batch("gate-1", rows))
    assert batch.events[0].data == {"u": "é"}
