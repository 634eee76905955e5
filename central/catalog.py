"""Serving the catalog: pages of the change log, snapshots, the retained head, compaction.

A device keeps the version of the catalog it has applied and asks for what follows with a
:class:`~entrada.protocol.CatalogRequest` on its ``catalog/req``; central answers on that
device's ``catalog/page`` with either

- a :class:`~entrada.protocol.CatalogPage`: the changes after ``since`` in version order,
  at most ``min(limit, catalog.page_size)`` of them, and the current head so the device
  knows whether to ask again; or
- a :class:`~entrada.protocol.CatalogSnapshot`, when the device is too far behind for the
  change log: ``since`` is below the compacted part of the log (the store's floor), more
  than ``catalog.snapshot_after`` versions behind the head, or beyond the head (central's
  store was replaced by an older one). The snapshot pages
  through the current rows; the device asks for the next page with the cursor
  (``CatalogRequest.snapshot``) and afterwards follows the change log from ``as_of``. A
  snapshot whose ``as_of`` has since been compacted away starts again from the beginning.

Every page is also cut to fit the MQTT payload limit, whatever its row count.

The site-wide retained :class:`~entrada.protocol.CatalogHead` tells every device (also one
that just booted) how far the catalog has gone. The catalog can be changed by another
process writing the same store (``entrada catalog ...``), so the head is read from the
store every :attr:`HeadPublisher.interval` seconds rather than only after our own writes.
:class:`Compactor` trims the change log to ``catalog.keep_versions`` every few minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from central.store import Storage, make_cursor
from entrada.protocol import (
    MAX_PAYLOAD_BYTES,
    CatalogChange,
    CatalogHead,
    CatalogPage,
    CatalogRequest,
    CatalogSnapshot,
    Topics,
    decode,
    encode,
)

if TYPE_CHECKING:
    from central.settings import CatalogSection
    from entrada.mqtt import MqttLink

logger = logging.getLogger(__name__)

#: publish(topic, payload, qos, retain) -> accepted by the link
Publish = Callable[[str, bytes, int, bool], bool]

#: Default of ``catalog.snapshot_after``.
DEFAULT_SNAPSHOT_AFTER = 100_000
#: Bytes a page's changes may take: the payload limit less room for the envelope (type,
#: versions and two snapshot cursors of at most 300 characters each).
PAGE_BUDGET = MAX_PAYLOAD_BYTES - 4096
#: How often the change log is compacted, and how many entries one pass removes at most
#: (so a long backlog is worked off in short transactions, a few seconds apart).
COMPACT_INTERVAL = 300.0
COMPACT_BATCH = 50_000
COMPACT_AGAIN = 2.0


def fit(changes: list[CatalogChange], budget: int = PAGE_BUDGET) -> list[CatalogChange]:
    """The longest prefix of ``changes`` whose JSON fits ``budget`` bytes (at least one:
    the store refuses a row too large for a page)."""
    size = 0
    for i, change in enumerate(changes):
        size += len(change.model_dump_json().encode("utf-8")) + 1  # and its comma
        if size > budget and i > 0:
            return changes[:i]
    return changes


def build_page(store: Storage, since: int, limit: int, page_size: int) -> CatalogPage:
    """The page answering "changes after ``since``, at most ``limit``"."""
    head = store.catalog_head()
    changes = fit(store.catalog_changes(since, max(1, min(limit, page_size))))
    to_version = changes[-1].version if changes else since
    if changes:  # another process may have written since the head was read
        head = max(head, to_version)
    return CatalogPage(from_version=since, to_version=to_version, head=head, changes=changes)


def build_snapshot(
    store: Storage, as_of: int, after: str | None, limit: int, page_size: int
) -> CatalogSnapshot:
    """One page of the snapshot ``as_of``: rows after the cursor ``after``. Raises
    ProtocolError for a cursor the store did not make."""
    rows, after_next = store.catalog_snapshot(after, max(1, min(limit, page_size)))
    kept = fit(rows)
    if len(kept) < len(rows):  # cut to the payload limit: continue after the last one sent
        last = kept[-1]
        after_next = make_cursor(last.entity, last.key)
    return CatalogSnapshot(
        as_of=as_of,
        head=store.catalog_head(),
        after=after,
        next=after_next,
        rows=kept,
    )


def answer(
    store: Storage,
    request: CatalogRequest,
    page_size: int,
    snapshot_after: int = DEFAULT_SNAPSHOT_AFTER,
) -> CatalogPage | CatalogSnapshot:
    """What to send for ``request``: a page of the log, or (a page of) a snapshot."""
    floor = store.catalog_floor()
    head = store.catalog_head()
    cursor = request.snapshot
    if cursor is not None:
        if floor <= cursor.as_of <= head:
            return build_snapshot(store, cursor.as_of, cursor.after, request.limit, page_size)
        # compacted past it (or the store was replaced): the device starts over
        return build_snapshot(store, head, None, request.limit, page_size)
    if request.since < floor or request.since > head or head - request.since > snapshot_after:
        # too far behind the log, or ahead of central (its store was replaced): start over
        return build_snapshot(store, head, None, request.limit, page_size)
    return build_page(store, request.since, request.limit, page_size)


def answer_request(
    store: Storage,
    topics: Topics,
    device: str,
    payload: bytes,
    page_size: int,
    *,
    snapshot_after: int = DEFAULT_SNAPSHOT_AFTER,
) -> tuple[str, bytes, CatalogPage | CatalogSnapshot]:
    """Decode a catalog request and build the reply: ``(topic, payload, message)``.

    Raises :class:`~entrada.errors.ProtocolError` for a payload that is not a request (or
    carries a snapshot cursor that is not ours), StoreError if the store cannot be read.
    """
    request = decode(CatalogRequest, payload)
    message = answer(store, request, page_size, snapshot_after)
    return topics.catalog_page(device), encode(message), message


class HeadPublisher:
    """Keeps the retained ``catalog/head`` equal to the store's head."""

    def __init__(self, topics: Topics, interval: float = 0.5) -> None:
        self.topics = topics
        self.interval = interval
        self.published: int | None = None
        self._next_check = 0.0

    def reset(self) -> None:
        """Publish again at the next :meth:`check` (after a reconnect)."""
        self.published = None
        self._next_check = 0.0

    def check(self, store: Storage, publish: Publish, now: float, mono: float) -> bool:
        """Publish the head if it is time to look and it changed; True if published.

        ``now`` is wall time (for the message), ``mono`` a monotonic clock (for pacing).
        """
        if mono < self._next_check:
            return False
        self._next_check = mono + self.interval
        head = store.catalog_head()
        if head == self.published:
            return False
        message = CatalogHead(version=head, ts=now)
        if not publish(self.topics.catalog_head, encode(message), 1, True):
            return False  # link down: try again at the next check
        if self.published is not None:
            logger.info("catalog head %d (was %d)", head, self.published)
        else:
            logger.info("catalog head %d published", head)
        self.published = head
        return True


class Compactor:
    """Trims the change log to the newest ``keep`` versions, at most every ``interval``
    seconds (sooner while a backlog larger than ``batch`` is being worked off)."""

    def __init__(
        self, keep: int, interval: float = COMPACT_INTERVAL, batch: int = COMPACT_BATCH
    ) -> None:
        self.keep = keep
        self.interval = interval
        self.batch = batch
        self._next_check = 0.0

    def check(self, store: Storage, mono: float) -> int:
        """Compact if it is time; returns how many log entries went. StoreError passes
        through (the next attempt is still a whole interval away)."""
        if mono < self._next_check:
            return 0
        self._next_check = mono + self.interval
        removed = store.compact_catalog(self.keep, max_rows=self.batch)
        if removed >= self.batch:
            self._next_check = mono + COMPACT_AGAIN
        if removed:
            logger.info(
                "catalog log compacted: %d entries removed, floor now %d",
                removed,
                store.catalog_floor(),
            )
        return removed


def serve_request(
    store: Storage,
    topics: Topics,
    device: str,
    payload: bytes,
    cfg: CatalogSection,
    link: MqttLink,
) -> str | None:
    """Answer one device's catalog request on its page topic: "page", "snapshot", or None
    when the reply could not be published (the device asks again)."""
    topic, body, reply = answer_request(
        store, topics, device, payload, cfg.page_size, snapshot_after=cfg.snapshot_after
    )
    if not link.publish(topic, body, qos=1, retain=False):
        return None
    if isinstance(reply, CatalogSnapshot):
        logger.debug(
            "catalog snapshot as of %d after %r (%d rows) to %s",
            reply.as_of,
            reply.after,
            len(reply.rows),
            device,
        )
        return "snapshot"
    logger.debug(
        "catalog page (%d, %d] of %d to %s",
        reply.from_version,
        reply.to_version,
        reply.head,
        device,
    )
    return "page"
