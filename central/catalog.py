"""Serving the catalog: pages of the change log, and the retained head.

A device keeps the version of the catalog it has applied and asks for what follows with a
:class:`~entrada.protocol.CatalogRequest` on its ``catalog/req``; central answers on that
device's ``catalog/page`` with the changes after ``since`` in version order, at most
``min(limit, catalog.page_size)`` of them, and the current head so the device knows
whether to ask again.

The site-wide retained :class:`~entrada.protocol.CatalogHead` tells every device (also one
that just booted) how far the catalog has gone. The catalog can be changed by another
process writing the same store (``entrada central wristbands ...``), so the head is read
from the store every :attr:`HeadPublisher.interval` seconds rather than only after our own
writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from central.store import Storage
from entrada.protocol import CatalogHead, CatalogPage, CatalogRequest, Topics, decode, encode

logger = logging.getLogger(__name__)

#: publish(topic, payload, qos, retain) -> accepted by the link
Publish = Callable[[str, bytes, int, bool], bool]


def build_page(store: Storage, since: int, limit: int, page_size: int) -> CatalogPage:
    """The page answering "changes after ``since``, at most ``limit``"."""
    head = store.catalog_head()
    changes = store.catalog_changes(since, max(1, min(limit, page_size)))
    to_version = changes[-1].version if changes else since
    return CatalogPage(from_version=since, to_version=to_version, head=head, changes=changes)


def answer_request(
    store: Storage, topics: Topics, device: str, payload: bytes, page_size: int
) -> tuple[str, bytes, CatalogPage]:
    """Decode a catalog request and build the reply: ``(topic, payload, page)``.

    Raises :class:`~entrada.errors.ProtocolError` for a payload that is not a request.
    """
    request = decode(CatalogRequest, payload)
    page = build_page(store, request.since, request.limit, page_size)
    return topics.catalog_page(device), encode(page), page


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
