"""Passages shared between the gates of a site, and the zone occupancy they give.

Each gate publishes its passages on ``entrada/{site}/presence/{id}`` (QoS 1) and takes in
its peers', so anti-passback, a pass's entry counter, an inner exit's tab charges and the
zone occupancy hold across gates while central is away. The broker keeps nothing: a gate
that was cut off gets what it missed because every gate shares its own passages of the
last ``presence.resend_window`` again after each reconnect, and a passage already known
(by id) counts once. Runs on the owner thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from controller.passages import Occupancy
from controller.settings import PresenceSection
from controller.store import DeviceStore
from entrada import protocol
from entrada.errors import ProtocolError

logger = logging.getLogger(__name__)


class PresenceShare:
    def __init__(
        self,
        cfg: PresenceSection,
        store: DeviceStore,
        topics: protocol.Topics,
        device_id: str,
        publish: Callable[[str, bytes], bool],
    ) -> None:
        """``publish(topic, payload)`` sends at QoS 1 (False: not connected)."""
        self.cfg = cfg
        #: Replaced by the runtime when it rebuilds a failed store.
        self.store = store
        self.occupancy = Occupancy(cfg.occupancy_ttl)
        #: New passages heard from peers.
        self.heard = 0
        self._topics = topics
        self._device_id = device_id
        self._publish = publish
        #: Passages waiting to be shared again, a batch per :meth:`pump` (a day of them at
        #: once would keep a tap waiting).
        self._backlog: list[str] = []  # passage ids

    def load(self, now: float) -> None:
        """Rebuild the occupancy from the passage log (at start, after a store rebuild)."""
        self.occupancy = Occupancy(self.cfg.occupancy_ttl)
        for passage in self.store.passages.since(now - self.cfg.occupancy_ttl):
            self.occupancy.observe(passage)

    def recorded(self, passages: Sequence[protocol.PeerPassage]) -> None:
        """This gate's passages, just committed: count them and tell the peers."""
        for passage in passages:
            self.occupancy.observe(passage)
        self.share(passages)

    def share(self, passages: Sequence[protocol.PeerPassage]) -> None:
        if not self.cfg.share or not passages:
            return
        topic = self._topics.presence(self._device_id)
        step = protocol.MAX_PRESENCE_PASSAGES
        for i in range(0, len(passages), step):
            chunk = list(passages[i : i + step])
            batch = protocol.PresenceBatch(device=self._device_id, passages=chunk)
            if not self._publish(topic, protocol.encode(batch)):
                return  # offline: shared again after the reconnect

    def reconnected(self, now: float) -> None:
        """Share again what this gate recorded lately (peers may have missed it), a batch
        at a time through :meth:`pump`."""
        if self.cfg.share:
            since = now - self.cfg.resend_window
            self._backlog = self.store.passages.ids_of_gate(self._device_id, since)

    def pump(self) -> None:
        """Share the next batch of the backlog (the owner loop calls this every pass)."""
        if not self._backlog:
            return
        step = protocol.MAX_PRESENCE_PASSAGES
        ids, rest = self._backlog[:step], self._backlog[step:]
        batch = self.store.passages.by_ids(ids)
        if not batch:
            self._backlog = rest
            return
        topic = self._topics.presence(self._device_id)
        message = protocol.PresenceBatch(device=self._device_id, passages=batch)
        if self._publish(topic, protocol.encode(message)):
            self._backlog = rest

    def on_batch(self, peer: str, payload: bytes) -> None:
        """A peer's passages (raises ProtocolError for a bad payload)."""
        batch = protocol.decode(protocol.PresenceBatch, payload)
        if batch.device != peer:
            raise ProtocolError(f"reject.wrong_device: {batch.device!r} on {peer!r}'s topic")
        if peer == self._device_id:
            return
        with self.store.transaction():
            new = [p for p in batch.passages if self.store.passages.add(p)]
        for passage in new:
            self.occupancy.observe(passage)
        self.heard += len(new)
