"""The central service: ingest events, keep the device registry, serve the catalog.

Threads (and nothing else):

- the **owner thread** (``central-owner``) opens the store, owns it and the service's
  state, and does all the work: it drains the inbox in batches, stores every event of a
  batch in ONE durable transaction, only THEN publishes each affected device's retained
  :class:`~entrada.protocol.Ack` (its watermarks), applies statuses, answers catalog
  requests (pages of the change log, or snapshots), republishes the catalog head when it
  changes, compacts the catalog's change log every few minutes, publishes devices' signed
  desired configs and keeps their reports (:mod:`central.config_publisher`), and pets the
  systemd watchdog;
- the **MQTT network thread** of :class:`~entrada.mqtt.MqttLink` only puts
  ``LinkUp``/``LinkDown``/``Incoming`` on the bounded inbox. When the inbox is full it
  waits, which stops reading from the socket: back-pressure reaches the broker instead of
  messages being dropped.

Zero loss does not rest on the broker: an event is acknowledged only after it is
committed, and a device re-sends what is not acknowledged. The persistent session
(``clean_start=False``) only saves those re-sends after a central restart. Anything that
fails to decode is logged (throttled) and, for events, quarantined; it never stops the loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.catalog import Compactor, HeadPublisher, serve_request
from central.config_publisher import REPORTED, ConfigPublisher, load_signing_key
from central.ingest import DecodedBatch, decode_events
from central.owner import OwnerCall, Systemd, Work, epochs
from central.queue_desk import QueueDesk, link_publisher
from central.replay import Replayer
from central.settings import CentralConfig
from central.sqlite_store import SqliteStorage
from central.store import DeviceBatch, Storage, open_storage
from entrada import config as entrada_config
from entrada.codes import Rejection
from entrada.errors import EntradaError, ProtocolError, StoreError
from entrada.logutil import ThrottledLog
from entrada.mqtt import Incoming, LinkDown, LinkUp, MqttLink, Will
from entrada.protocol import (
    Ack,
    CatalogHead,
    CentralStatus,
    Status,
    Topics,
    decode,
    encode,
    rejection_code,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Most messages waiting for the owner thread (about 40 MB of 200-event batches).
INBOX_MAX = 2000
#: Longest the owner thread blocks on an empty inbox (paces head checks and watchdog).
POLL_INTERVAL = 0.1
#: How often the store's catalog head is compared with the published one.
HEAD_CHECK_INTERVAL = 0.5
DB_FILE = "central.sqlite"
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def db_path(cfg: CentralConfig) -> Path:
    """Where the central store of this config lives."""
    return cfg.central.data_dir / DB_FILE


def load_central_config(path: str | Path) -> CentralConfig:
    """Read and validate a central config file (ConfigError lists every problem)."""
    return entrada_config.load(path, CentralConfig)


@dataclass
class Stats:
    """Counters kept by the owner thread (read them from anywhere for monitoring)."""

    batches: int = 0
    events_stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    payloads_refused: int = 0
    acks_published: int = 0
    statuses_applied: int = 0
    statuses_ignored: int = 0
    pages_served: int = 0
    snapshot_pages_served: int = 0
    catalog_compacted: int = 0
    store_failures: int = 0
    #: Offline decisions replayed against central's data (conflicts: ``entrada conflicts``).
    replayed: int = 0


class CentralService:
    """The site's central service; ``start()`` and ``stop()`` may be repeated."""

    def __init__(self, cfg: CentralConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg.central.site)
        self.db_path = db_path(cfg)
        self.stats = Stats()
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._inbox: queue.Queue[object] = queue.Queue(INBOX_MAX)
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._connected = threading.Event()
        self._error: BaseException | None = None
        self._refused = ThrottledLog(logger)  # owner thread only
        self._full = ThrottledLog(logger)  # MQTT network thread only
        self._heads = HeadPublisher(self.topics, HEAD_CHECK_INTERVAL)
        self._compactor = Compactor(cfg.catalog.keep_versions)
        self._replayer = Replayer(settle_seconds=cfg.replay.settle)
        self._next_replay = 0.0
        self._link: MqttLink | None = None
        self._states: dict[str, str] = {}
        #: The electronic queue (when [queue] names services); owner thread only.
        self.desk: QueueDesk | None = None
        #: Devices' desired configs and their reports; owner thread only.
        self.configs: ConfigPublisher | None = None
        self._signing_key: Ed25519PrivateKey | None = None

    # ------------------------------------------------------------------ public

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """Why the owner thread ended, if it ended on an error."""
        return self._error

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, timeout: float = 30.0) -> None:
        """Open the store and start the owner thread. Raises StoreError if the store cannot
        be opened (EntradaError for any other start failure). Returns before the broker
        is reached (see :meth:`wait_ready`)."""
        if self.running:
            raise EntradaError("central service already running")
        self._signing_key = load_signing_key(self.cfg.central.signing_key)
        self._stop.clear()
        self._opened.clear()
        self._connected.clear()
        self._error = None
        self._inbox = queue.Queue(INBOX_MAX)
        self._heads.reset()
        self._thread = threading.Thread(target=self._run, name="central-owner", daemon=True)
        self._thread.start()
        if not self._opened.wait(timeout):
            raise StoreError(f"central store {self.db_path} not opened within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            error = StoreError if isinstance(self._error, StoreError) else EntradaError
            raise error(f"central did not start: {self._error}") from self._error

    def wait_ready(self, timeout: float) -> bool:
        """True once the store is open and the broker connection is up (subscriptions
        sent); False on timeout or if the service is not running."""
        deadline = time.monotonic() + timeout
        while True:
            if self._connected.is_set():
                return self.running
            if not self.running:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._connected.wait(min(0.05, left))

    def stop(self, timeout: float = 15.0) -> None:
        """Stop cleanly: disconnect, store what is already received, close the store."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.error("central owner thread did not stop within %.1f s", timeout)
        self._thread = None

    # -------------------------------------------------------------- link side

    def _enqueue(self, item: object) -> None:
        """Called on the MQTT network thread: hand over, waiting while the inbox is full."""
        while True:
            try:
                self._inbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._stop.is_set():
                    return  # shutting down: the device re-sends what is not acknowledged
                self._full.warning(
                    "full", "central inbox full (%d): holding back the broker", INBOX_MAX
                )

    # ------------------------------------------------------------ owner thread

    def _run(self) -> None:
        systemd = Systemd()
        try:
            store = open_storage(self.cfg.central.store, self.db_path, self.cfg.ingest.synchronous)
        except StoreError as err:
            logger.error("%s", err)
            self._error = err
            self._opened.set()
            systemd.close()
            return
        link: MqttLink | None = None
        try:
            self.configs = ConfigPublisher(self.db_path, self.topics, self._signing_key)
            link = MqttLink(
                self.cfg.central.client_id,
                self.cfg.mqtt,
                self._enqueue,
                [
                    (self.topics.all_devices("events"), 1),
                    (self.topics.all_devices("status"), 1),
                    (self.topics.all_devices("catalog/req"), 1),
                    (self.topics.catalog_head, 1),
                    (self.topics.central_status, 1),
                    *self.configs.subscriptions(),
                    *self._open_desk(),
                ],
                clean_start=False,
                will=self._will,
                epoch_source=epochs(self._clock),
            )
            self._link = link
            self._states = {d.device: d.state for d in store.devices()}
            link.start()
            self._opened.set()
            logger.info(
                "central %s: store %s, broker %s:%d",
                self.topics.site,
                self.db_path,
                self.cfg.mqtt.host,
                self.cfg.mqtt.port,
            )
            systemd.notify("READY=1")
            self._loop(store, link, systemd)
        except Exception as err:  # crash barrier: log it, end the thread, let systemd restart
            logger.exception("central owner thread failed")
            self._error = err
        finally:
            systemd.notify("STOPPING=1")
            self._shutdown(store, link)
            systemd.close()
            self._opened.set()

    def _open_desk(self) -> list[tuple[str, int]]:
        if not self.cfg.queue.services:
            return []
        self.desk = QueueDesk(self.cfg.queue, self.cfg.central.data_dir, self.topics)
        return self.desk.subscriptions()

    def _loop(self, store: Storage, link: MqttLink, systemd: Systemd) -> None:
        while not self._stop.is_set():
            work = self._drain()
            if work is not None:
                self._process(work, store, link)
            mono = time.monotonic()
            try:
                self._heads.check(store, link.publish, self._clock(), mono)
            except StoreError as err:
                self._refused.warning("head", "cannot read the catalog head: %s", err)
            try:
                self.stats.catalog_compacted += self._compactor.check(store, mono)
            except StoreError as err:
                self._refused.warning("compact", "compacting the catalog log failed: %s", err)
            if mono >= self._next_replay:
                self._next_replay = mono + self.cfg.replay.every
                try:
                    if isinstance(store, SqliteStorage):  # replays read SQLite directly
                        self.stats.replayed += self._replayer.run_once(store, self._clock())
                except StoreError as err:
                    self._refused.warning("replay", "replaying offline decisions failed: %s", err)
            if self.desk is not None and link.connected:
                self.desk.pump(link_publisher(link), self._clock(), mono)
            if self.configs is not None and link.connected:
                self.configs.pump(link.publish, mono)
            systemd.pet(mono)

    def _check_own_status(self, payload: bytes) -> None:
        """Re-assert the birth if the retained status says otherwise (a late will of an
        older connection, or one published by hand): gates would count time offline."""
        link = self._link
        if link is None or not link.connected:
            return
        try:
            seen = decode(CentralStatus, payload)
        except ProtocolError:
            seen = None
        if seen is None or seen.state != "online" or seen.epoch != max(link.epoch, 1):
            self._refused.warning(
                ("status",), "central's retained status was changed; publishing it again"
            )
            self._publish_status("online", link.epoch)

    def _will(self, epoch: int) -> Will:
        offline = CentralStatus(state="offline", epoch=max(epoch, 1), ts=self._clock())
        return Will(self.topics.central_status, encode(offline))

    def _publish_status(self, state: str, epoch: int) -> None:
        """Central's retained status: gates count their time without central from it."""
        link = self._link
        if link is None:
            return
        status = CentralStatus(state=state, epoch=max(epoch, 1), ts=self._clock())  # type: ignore[arg-type]
        link.publish(self.topics.central_status, encode(status), qos=1, retain=True)

    def _shutdown(self, store: Storage, link: MqttLink | None) -> None:
        """Each step on its own: a failing one must not skip the others."""
        try:
            if link is not None:
                if link.connected:
                    self._publish_status("offline", link.epoch)
                link.stop()
        finally:
            try:
                leftover = self._drain_nowait()
                if leftover is not None and link is not None:
                    self._process(leftover, store, link)
            except StoreError as err:
                logger.error("could not store the last received events: %s", err)
            finally:
                store.close()
                if self.desk is not None:
                    self.desk.close()
                    self.desk = None
                if self.configs is not None:
                    self.configs.close()
                    self.configs = None
                self._connected.clear()
                logger.info("central stopped")

    # --------------------------------------------------------------- draining

    def _drain(self) -> Work | None:
        """First item blocking (briefly), then more until ``batch_max`` events: waiting for
        them at most ``batch_window``, and taking what is already queued without waiting."""
        try:
            first = self._inbox.get(timeout=POLL_INTERVAL)
        except queue.Empty:
            return None
        work = Work()
        self._take(first, work)
        deadline = time.monotonic() + self.cfg.ingest.batch_window
        while work.n_events < self.cfg.ingest.batch_max:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._inbox.get(timeout=remaining)
                else:
                    item = self._inbox.get_nowait()
            except queue.Empty:
                break
            self._take(item, work)
        return work

    def _drain_nowait(self) -> Work | None:
        work = Work()
        while True:
            try:
                self._take(self._inbox.get_nowait(), work)
            except queue.Empty:
                break
        return work if work.events or work.statuses else None

    def on_owner(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the owner thread and return its result (the API's way to the
        queue desk, whose state only that thread touches). Raises TimeoutError when the
        service does not get to it in time, or what ``fn`` raised."""
        done: Future[T] = Future()
        self._enqueue(OwnerCall(fn, done))
        return done.result(timeout)

    def _take(self, item: object, work: Work) -> None:
        if isinstance(item, OwnerCall):
            item.run()
        elif isinstance(item, Incoming):
            self._classify(item, work)
        elif isinstance(item, LinkUp):
            self._connected.set()
            self._heads.reset()  # the broker may have lost the retained head
            if self.desk is not None:
                self.desk.board_changed()  # and the retained board
            if self.configs is not None:
                self.configs.link_up()  # and the retained desired configs
            self._publish_status("online", item.epoch)
        elif isinstance(item, LinkDown):
            self._connected.clear()

    def _classify(self, msg: Incoming, work: Work) -> None:
        if msg.topic == self.topics.catalog_head:
            self._check_head(msg.payload)
            return
        if msg.topic == self.topics.central_status:
            self._check_own_status(msg.payload)
            return
        if self.desk is not None and self.desk.handles(msg):
            work.queue.append(msg)
            return
        parsed = self.topics.parse_device_topic(msg.topic)
        if parsed is None:
            self._refused.warning(("topic",), "message on unexpected topic %s", msg.topic)
            return
        device, leaf = parsed
        if leaf == "events":
            decoded = decode_events(device, msg.topic, msg.payload)
            work.events.append(decoded)
            work.n_events += len(decoded.events) + len(decoded.quarantined)
        elif leaf == "status":
            self._classify_status(device, msg, work)
        elif leaf == "catalog/req":
            work.catalog_requests.append((device, msg.payload))
        elif leaf == REPORTED and self.configs is not None:
            self.configs.on_reported(device, msg.payload, self._clock())
        else:
            self._refused.warning(("topic",), "message on unexpected topic %s", msg.topic)

    def _check_head(self, payload: bytes) -> None:
        """Our own retained head coming back: if someone overwrote or cleared it, put the
        store's head back at the next check (devices trust this topic to catch up)."""
        try:
            seen: int | None = decode(CatalogHead, payload).version
        except ProtocolError:
            seen = None
        if seen != self._heads.published:
            self._refused.warning(
                ("head",), "retained catalog head was changed to %r; restoring it", seen
            )
            self._heads.reset()

    def _classify_status(self, device: str, msg: Incoming, work: Work) -> None:
        if not msg.payload:
            logger.debug("status of %s cleared", device)  # retained status deleted
            return
        try:
            status = decode(Status, msg.payload)
        except ProtocolError as err:
            self._refuse("status", device, rejection_code(err), str(err))
            return
        if status.device != device:
            self._refuse(
                "status",
                device,
                Rejection.WRONG_DEVICE,
                f"status of {status.device!r} on the topic of {device!r}",
            )
            return
        work.statuses.append((status, msg.retain))

    def _refuse(self, leaf: str, device: str, code: str, reason: str) -> None:
        self.stats.payloads_refused += 1
        self._refused.warning(
            (leaf, code), "%s from %s refused [%s]: %s", leaf, device, code, reason
        )

    # ------------------------------------------------------------- processing

    def _process(self, work: Work, store: Storage, link: MqttLink) -> None:
        now = self._clock()
        if work.events:
            self._store_and_ack(work.events, store, link, now)
        for status, retained in work.statuses:
            self._apply_status(status, retained, store, now)
        for device, payload in work.catalog_requests:
            self._serve_catalog(device, payload, store, link)
        if self.desk is not None:
            for msg in work.queue:
                self.desk.on_message(msg, link_publisher(link), now)

    def _store_and_ack(
        self, decoded: list[DecodedBatch], store: Storage, link: MqttLink, now: float
    ) -> None:
        for d in decoded:
            if d.rejected is not None:
                self._refuse("events", d.device, *d.rejected)
            for q in d.quarantined if d.rejected is None else ():
                self._refused.warning(
                    ("event", q.code),
                    "event %s/%s of %s quarantined [%s]: %s",
                    q.stream,
                    q.seq,
                    d.device,
                    q.code,
                    q.reason,
                )
        if self.desk is not None:
            # Queue events are applied (and saved) before the batch is acknowledged.
            decoded = [
                d
                for d in decoded
                if d.rejected is not None or self.desk.on_events(d.device, d.events, now)
            ]
        try:
            results = store.store_batches(
                [DeviceBatch(d.device, d.events, d.quarantined) for d in decoded], now
            )
        except StoreError as err:
            # Nothing is acknowledged, so the devices re-send: nothing is lost.
            self.stats.store_failures += 1
            self._refused.error(
                ("store",), "storing %d events failed: %s", sum(len(d.events) for d in decoded), err
            )
            return
        self.stats.batches += 1
        for r in results.values():
            self.stats.events_stored += r.stored_new
            self.stats.duplicates += r.duplicates
        self.stats.quarantined += sum(len(d.quarantined) for d in decoded)
        # Committed: now acknowledge every device that sent events, changed or not (a
        # device re-sending duplicates has missed our last ack and needs it again).
        for device in dict.fromkeys(d.device for d in decoded if d.rejected is None):
            try:
                ack = Ack(device=device, streams=store.watermarks(device), ts=now)
            except StoreError as err:  # not acknowledged: the device re-sends
                self._refused.error(("store",), "reading watermarks failed: %s", err)
                continue
            if link.publish(self.topics.ack(device), encode(ack), qos=1, retain=True):
                self.stats.acks_published += 1

    def _apply_status(self, status: Status, retained: bool, store: Storage, now: float) -> None:
        try:
            accepted = store.apply_status(status, now, seen=not retained)
        except StoreError as err:
            self._refused.error(
                ("store",), "storing the status of %s failed: %s", status.device, err
            )
            return
        if self.configs is not None:
            self.configs.on_status(status, now, newest=accepted)
        if not accepted:
            self.stats.statuses_ignored += 1
            logger.debug(
                "status %s epoch %d of %s ignored (older)",
                status.state,
                status.epoch,
                status.device,
            )
            return
        self.stats.statuses_applied += 1
        if self.desk is not None and status.role == "display":
            self.desk.display_status(status.device, status.state, status.ts)
        if self._states.get(status.device) != status.state:
            self._states[status.device] = status.state
            logger.info(
                "device %s %s (epoch %d, %s)",
                status.device,
                status.state,
                status.epoch,
                status.role,
            )

    def _serve_catalog(self, device: str, payload: bytes, store: Storage, link: MqttLink) -> None:
        try:
            served = serve_request(store, self.topics, device, payload, self.cfg.catalog, link)
        except ProtocolError as err:
            self._refuse("catalog/req", device, rejection_code(err), str(err))
            return
        except StoreError as err:
            self._refused.warning(("store",), "reading the catalog failed: %s", err)
            return
        if served == "snapshot":
            self.stats.snapshot_pages_served += 1
        elif served == "page":
            self.stats.pages_served += 1
