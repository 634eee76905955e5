"""Sending the outbox to central: batched, bounded in flight, re-sent until acknowledged.

Rows stay in SQLite until central's retained watermark covers them; only a small window
of batch descriptors lives in memory, so a week offline costs disk, not RAM. A batch not
acknowledged within ``ack_timeout`` is sent again with exponential backoff up to
``backoff_max``. Central de-duplicates on (device, stream, seq), so a re-send is harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.settings import OutboxSection
from controller.store import DeviceStore, OutboxRow
from entrada import protocol

logger = logging.getLogger(__name__)

#: publish(topic, payload) -> accepted by the link
Publish = Callable[[str, bytes], bool]


@dataclass
class InFlight:
    stream: str
    first: int
    last: int
    deadline: float
    attempts: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class OutboxSender:
    """Owned by the daemon's owner thread; call :meth:`pump` often and :meth:`on_ack`
    when central's watermark arrives."""

    def __init__(
        self, store: DeviceStore, cfg: OutboxSection, device_id: str, topic: str, publish: Publish
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.device_id = device_id
        self.topic = topic
        self._publish = publish
        self._inflight: list[InFlight] = []
        self._cursor: dict[str, int] = {}  # highest seq sent (or acknowledged) per stream
        self._acked: dict[str, int] = {}
        self.sent_batches = 0
        self.resent_batches = 0

    @property
    def inflight_events(self) -> int:
        return sum(b.size for b in self._inflight)

    def reset(self) -> None:
        """After a reconnect: everything unacknowledged is due again at once."""
        for batch in self._inflight:
            batch.deadline = 0.0

    def on_ack(self, watermarks: dict[str, int]) -> int:
        """Delete what central stored; returns the number of rows removed."""
        removed = 0
        for stream, mark in watermarks.items():
            if mark <= self._acked.get(stream, 0):
                continue
            self._acked[stream] = mark
            removed += self.store.acknowledge(stream, mark)
            self._cursor[stream] = max(self._cursor.get(stream, 0), mark)
        if removed or watermarks:
            kept: list[InFlight] = []
            for b in self._inflight:
                mark = self._acked.get(b.stream, 0)
                if b.last <= mark:
                    continue
                b.first = max(b.first, mark + 1)
                kept.append(b)
            self._inflight = kept
        return removed

    def pump(self, now: float) -> int:
        """Re-send overdue batches, then send new ones while the window has room.
        Returns the number of events handed to the link."""
        handed = 0
        for batch in self._inflight:
            if batch.deadline > now:
                continue
            rows = self.store.outbox_range(batch.stream, batch.first, batch.last)
            if not rows:
                batch.deadline = float("inf")  # acknowledged meanwhile; dropped on next ack
                continue
            if not self._send(rows):
                return handed
            batch.attempts += 1
            batch.deadline = now + self._backoff(batch.attempts)
            self.resent_batches += 1
            handed += len(rows)
        self._inflight = [b for b in self._inflight if b.deadline != float("inf")]
        room = self.cfg.max_inflight - self.inflight_events
        if room <= 0:
            return handed
        for stream in self.store.streams_pending():
            while room > 0:
                after = self._cursor.get(stream, self._acked.get(stream, 0))
                rows = self.store.outbox_after(stream, after, min(self.cfg.batch_size, room))
                if not rows:
                    break
                if not self._send(rows):
                    return handed
                self._cursor[stream] = rows[-1].seq
                self._inflight.append(
                    InFlight(stream, rows[0].seq, rows[-1].seq, now + self._backoff(0), 0)
                )
                self.sent_batches += 1
                handed += len(rows)
                room -= len(rows)
        return handed

    def _backoff(self, attempts: int) -> float:
        return float(min(self.cfg.ack_timeout * (2**attempts), self.cfg.backoff_max))

    def _send(self, rows: list[OutboxRow]) -> bool:
        return self._publish(self.topic, encode_batch(self.device_id, rows))


def encode_batch(device_id: str, rows: list[OutboxRow]) -> bytes:
    """An :class:`protocol.EventBatch` payload built straight from stored rows."""
    events = ",".join(
        '{"id":%s,"stream":%s,"seq":%d,"kind":%s,"ts":%s,"data":%s}'  # noqa: UP031
        % (json.dumps(r.id), json.dumps(r.stream), r.seq, json.dumps(r.kind), repr(r.ts), r.data)
        for r in rows
    )
    head = '{"v":%d,"type":"events","device":%s,"events":[' % (  # noqa: UP031
        protocol.SCHEMA_VERSION,
        json.dumps(device_id),
    )
    return (head + events + "]}").encode("utf-8")
