"""Following central's catalog: ask for what follows the local version, apply what comes.

Central answers a :class:`~entrada.protocol.CatalogRequest` with a page of its change log
or, for a device too far behind, with the pages of a full snapshot. Pages are applied one
by one, each atomically; a snapshot is staged until its last page. The retained catalog
head says how far central has gone, so a device keeps asking until it has caught up; a
request not answered within :data:`RETRY` seconds is asked again. Runs on the owner thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from controller.clock import Clock
from controller.store import DeviceStore
from entrada import protocol
from entrada.errors import StoreError

logger = logging.getLogger(__name__)

RETRY = 5.0  # re-ask for a catalog page not answered, s


class CatalogSync:
    def __init__(
        self,
        store: DeviceStore,
        topics: protocol.Topics,
        device_id: str,
        clock: Clock,
        publish: Callable[[str, bytes], bool],
        on_applied: Callable[[bool], None],
    ) -> None:
        """``publish(topic, payload)`` sends a request (False: not connected);
        ``on_applied(rules_changed)`` runs after each page or completed snapshot."""
        #: Replaced by the runtime when it rebuilds a failed store.
        self.store = store
        self.head = 0
        self._topics = topics
        self._device_id = device_id
        self._clock = clock
        self._publish = publish
        self._on_applied = on_applied
        self._asked_at: float | None = None

    @property
    def caught_up(self) -> bool:
        return self.store.snapshot_cursor() is None and self.store.catalog_version >= self.head

    def reset(self) -> None:
        """A new connection: the next request goes out at once."""
        self._asked_at = None

    def on_head(self, head: protocol.CatalogHead) -> None:
        self.head = head.version
        self.request()

    def request(self, force: bool = False) -> None:
        """Ask for what follows the local version, unless caught up (``force``: ask anyway,
        e.g. an empty catalog that does not know the head yet) or a request is pending."""
        if not force and self.caught_up:
            return
        now = self._clock.monotonic()
        if self._asked_at is not None and now - self._asked_at < RETRY:
            return
        req = protocol.CatalogRequest(
            since=self.store.catalog_version,
            limit=protocol.MAX_PAGE_CHANGES,
            snapshot=self.store.snapshot_cursor(),
        )
        if self._publish(self._topics.catalog_request(self._device_id), protocol.encode(req)):
            self._asked_at = now

    def on_reply(self, payload: bytes) -> None:
        """A page or a snapshot page arrived (raises ProtocolError if it is neither)."""
        reply = protocol.decode_one_of((protocol.CatalogPage, protocol.CatalogSnapshot), payload)
        self._asked_at = None
        if isinstance(reply, protocol.CatalogSnapshot):
            self._on_snapshot(reply)
        else:
            assert isinstance(reply, protocol.CatalogPage)
            self._on_page(reply)

    def _on_page(self, page: protocol.CatalogPage) -> None:
        self.head = max(self.head, page.head)
        local = self.store.catalog_version
        if page.from_version != local:
            logger.info(
                "catalog page from v%d does not follow local v%d; asking again",
                page.from_version,
                local,
            )
        elif page.to_version > local:
            if self.store.snapshot_cursor() is not None:
                self.store.abandon_snapshot()  # the log can serve us after all
            rules_changed = self.store.apply_catalog(page.changes, page.to_version)
            logger.info(
                "catalog v%d -> v%d (%d changes)", local, page.to_version, len(page.changes)
            )
            self._on_applied(rules_changed)
        self.request()

    def _on_snapshot(self, page: protocol.CatalogSnapshot) -> None:
        """A page of a full snapshot: staged until the last one swaps the catalog."""
        self.head = max(self.head, page.head)
        cursor = self.store.snapshot_cursor()
        if (
            cursor is not None
            and page.after is not None
            and (page.as_of, page.next) == (cursor.as_of, cursor.after)
        ):
            logger.debug("snapshot page after %r again: already staged", page.after)
            self.request()
            return
        try:
            done = self.store.apply_snapshot_page(page)
        except StoreError as err:
            logger.info("%s; starting the snapshot again", err)
            self.store.abandon_snapshot()
            self.request(force=True)
            return
        if page.after is None:
            logger.info("taking a catalog snapshot as of v%d", page.as_of)
        if done:
            logger.info(
                "catalog snapshot v%d applied (%d rows)", page.as_of, self.store.catalog.count()
            )
            self._on_applied(True)
        self.request(force=not done)
