"""The device daemon's runtime: one owner thread, an inbox, and the parts it drives.

Drivers (reader threads, gpiozero callbacks), the MQTT link's network thread and the
simulator channel only put events on the inbox. The owner thread takes them one by one,
asks the role what to do, and carries that out: relay and indicator first (a visitor is
never kept waiting on a disk write), then the event and the state it records in one
SQLite transaction. It also pumps the outbox, applies catalog pages and keeps the
retained status current. Nothing here sleeps except on the inbox.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from controller.catalog_sync import CatalogSync
from controller.clock import Clock, SystemClock
from controller.contact import CentralContact
from controller.inputs import Press, ReaderHealth, Rotation, Stop, Tap
from controller.outbox import OutboxSender
from controller.passages import KEEP_SECONDS
from controller.presence import PresenceShare
from controller.roles.actions import Emit, Pulse, Reaction, Record, Signal
from controller.roles.gate import GateRole
from controller.roles.gate_decide import TapContext, gate_model
from controller.rules.assemble import HISTORY_DAYS, WristbandRecord, occupancy_of
from controller.rules.catalog_schema import parse_catalog
from controller.rules.engine import check_gate
from controller.rules.errors import CatalogError, RulesInputError
from controller.rules.model import Site
from controller.settings import DeviceConfig
from controller.store import DeviceStore, next_epoch
from drivers.registry import DriverSet
from entrada import __version__, protocol
from entrada.codes import Fault, Outcome
from entrada.errors import DriverError, ProtocolError, StoreError
from entrada.logutil import ThrottledLog
from entrada.mqtt import Incoming, LinkDown, LinkUp, MqttLink, Will

logger = logging.getLogger(__name__)

INBOX_MAX = 10_000
TICK = 0.05  # owner loop wake-up when idle, s
STATUS_EVERY = 30.0  # retained status refresh, s
READER_RETRY = 10.0  # retry starting a reader that failed, s
PRUNE_EVERY = 3600.0  # forget old passages that consumed nothing, s


@dataclass
class Counters:
    taps: int = 0
    granted: int = 0
    denied: int = 0
    debounced: int = 0
    rotations: int = 0
    rejected_messages: int = 0
    #: Exits refused because something was owed (``denied.owing``).
    exits_refused_owing: int = 0
    #: Money settled at final exits, in minor units (charges less the deposit's credit).
    charged_minor: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Events recorded, by kind (gate.passage, gate.annulled, ...).
    events: dict[str, int] = field(default_factory=dict)


class DeviceRuntime:
    """Everything a device does, driven from one thread by :meth:`run`."""

    def __init__(
        self,
        cfg: DeviceConfig,
        drivers: DriverSet,
        store: DeviceStore,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.device_id = cfg.device.id
        self.drivers = drivers
        self.store = store
        self.clock = clock or SystemClock()
        self._notify = notify or (lambda _msg: None)
        self.inbox: queue.Queue[object] = queue.Queue(maxsize=INBOX_MAX)
        self.topics = protocol.Topics(cfg.device.site)
        self.role = GateRole(cfg.gate, self.device_id, rotation=drivers.rotation is not None)
        self.counters = Counters()
        self.faults: set[str] = set()
        self._rate = ThrottledLog(logger)
        self._stopping = False
        self._online = False
        self._epoch = 0
        self._reader_started = False
        self._next_reader_try = 0.0
        self._next_status = 0.0
        self._next_housekeeping = 0.0
        self._next_prune = 0.0
        self.site: Site | None = None
        self.contact = CentralContact(self.clock.time())
        #: Monotonic time to share recent passages once more after a reconnect.
        self._reshare_at: float | None = None
        t = self.topics
        subscriptions = [
            (t.ack(self.device_id), 1),
            (t.catalog_page(self.device_id), 1),
            (t.catalog_head, 1),
            (t.status(self.device_id), 1),
            (t.central_status, 1),
        ]
        if cfg.presence.share:
            subscriptions.append((t.all_presence, 1))
        self.link = MqttLink(
            self.device_id,
            cfg.mqtt,
            self._enqueue,
            subscriptions=subscriptions,
            will=self._will,
            epoch_source=lambda: next_epoch(store.path, self.clock.time()),
        )
        self.outbox = OutboxSender(
            store, cfg.outbox, self.device_id, t.events(self.device_id), self._publish_event_batch
        )
        self.catalog = CatalogSync(
            store,
            t,
            self.device_id,
            self.clock,
            lambda topic, payload: self._online and self.link.publish(topic, payload),
            self._on_catalog_applied,
        )
        if store.rebuilt_reason is not None:
            self.faults.add(Fault.STORE_REBUILT)
        self.presence = PresenceShare(
            cfg.presence,
            store,
            t,
            self.device_id,
            lambda topic, payload: self._online and self.link.publish(topic, payload, qos=1),
        )
        self.presence.load(self.clock.time())
        self._load_rules()

    # ------------------------------------------------------------ other threads

    def _enqueue(self, item: object) -> None:
        """The only entry point for other threads."""
        self.inbox.put(item)

    def on_uid(self, uid: str) -> None:
        self._enqueue(Tap(uid, self.clock.monotonic()))

    def on_reader_health(self, ok: bool, reason: str) -> None:
        self._enqueue(ReaderHealth(ok, reason))

    def on_press(self, button: str) -> None:
        self._enqueue(Press(button, self.clock.monotonic()))

    def on_rotation(self) -> None:
        self._enqueue(Rotation(self.clock.monotonic()))

    def request_stop(self, reason: str = "stop requested") -> None:
        self._enqueue(Stop(reason))

    # --------------------------------------------------------------- lifecycle

    def run(self) -> None:
        """Start, serve until a Stop arrives, shut down. Call on the owner thread."""
        self.drivers.relay.release()
        self._start_reader()
        if self.drivers.buttons is not None:
            self.drivers.buttons.start(self.on_press)
        if self.drivers.rotation is not None:
            self.drivers.rotation.start(self.on_rotation)
        self.link.start()
        self._notify("READY=1")
        logger.info(
            "device %s ready (role %s, catalog v%d, outbox %d)",
            self.device_id,
            self.role.name,
            self.store.catalog_version,
            self.store.outbox_depth(),
        )
        try:
            while not self._stopping:
                self._serve_once()
        finally:
            self._shutdown()

    def _serve_once(self) -> None:
        """Take what is queued (waiting up to TICK for the first item), visitors first:
        taps, presses and rotations (in their order of arrival) are handled before acks,
        pages and link changes queued with them, so a visitor never waits behind
        housekeeping. Passages waiting for a rotation are checked on every pass (every TICK
        when idle), so an annulment comes soon after its deadline, not at housekeeping's
        once a second."""
        try:
            items = [self.inbox.get(timeout=TICK)]
        except queue.Empty:
            items = []
        while items and len(items) < 200:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        urgent = [i for i in items if isinstance(i, Tap | Press | Rotation)]
        for item in urgent + [i for i in items if not isinstance(i, Tap | Press | Rotation)]:
            self._handle_safely(item)
            if self._stopping:
                break
        if self.role.pending and not self._stopping:
            with self._guard("pending passages"):
                self._react(self.role.on_tick(self.clock.time()))
        now = self.clock.monotonic()
        if self._online:
            self._pump_outbox()
            self.presence.pump()
        if now >= self._next_housekeeping:
            self._housekeeping(now)

    def _handle_safely(self, item: object) -> None:
        with self._guard(type(item).__name__):
            self._handle(item)

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """A store or driver failure while handling ``what`` is logged (and a failed store
        rebuilt); the loop carries on."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            logger.error("device store failed while handling %s: %s", what, err)
            self._recover_store(str(err))
        except DriverError as err:
            logger.error("driver failed while handling %s: %s", what, err)

    def _shutdown(self) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("release relay", self.drivers.relay.release),
            ("stop reader", self.drivers.rfid.stop),
            ("annul pending passages", lambda: self._react(self.role.on_stop(self.clock.time()))),
            ("publish offline status", self._publish_offline),
            ("stop mqtt", self.link.stop),
            ("close drivers", self.drivers.close),
            ("close store", self.store.close),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as err:  # noqa: BLE001 - each shutdown step runs regardless
                logger.error("shutdown step %r failed: %s", name, err)
        logger.info("device %s stopped", self.device_id)

    # ---------------------------------------------------------------- dispatch

    def _handle(self, item: object) -> None:
        if isinstance(item, Tap):
            self._on_tap(item)
        elif isinstance(item, Incoming):
            self._on_message(item)
        elif isinstance(item, Press):
            self._carry_out(self.role.on_press(item.button, self.clock.time()))
        elif isinstance(item, Rotation):
            self.counters.rotations += 1
            self._carry_out(self.role.on_rotation(self.clock.time()))
        elif isinstance(item, LinkUp):
            self._on_link_up(item)
        elif isinstance(item, LinkDown):
            self._online = False
            self.contact.link(False, self.clock.time())
        elif isinstance(item, ReaderHealth):
            self._on_reader_health(item)
        elif isinstance(item, Stop):
            logger.info("stopping: %s", item.reason)
            self._stopping = True
        else:
            logger.error("unexpected inbox item %r", item)

    def _on_tap(self, tap: Tap) -> None:
        self.counters.taps += 1
        now = self.clock.time()
        ctx = (
            TapContext(WristbandRecord(tap.uid, None), None, self.store.catalog_version)
            if self.role.repeats(tap.uid, now)  # ignored: nothing to look up
            else self._tap_context(tap.uid, now)
        )
        reaction = self.role.on_tap(tap.uid, ctx, now)
        self._carry_out(reaction)
        outcome = str(reaction.outcome)
        if outcome == Outcome.IGNORED_DEBOUNCE:
            self.counters.debounced += 1
        elif outcome.startswith("granted"):
            self.counters.granted += 1
        else:
            self.counters.denied += 1
            if outcome == "denied.owing":
                self.counters.exits_refused_owing += 1
        self.counters.outcomes[outcome] = self.counters.outcomes.get(outcome, 0) + 1

    def _tap_context(self, uid: str, now: float) -> TapContext:
        """Everything the store knows about ``uid``, for the role's decision."""
        passages = self.store.passages.of_uid(uid, now - HISTORY_DAYS * 86400.0)
        site = self.site
        inside = self.presence.occupancy.innermost()
        occupancy = occupancy_of(site, inside) if site is not None else {}
        return TapContext(
            self.store.catalog.record(uid, passages),
            site,
            self.store.catalog_version,
            occupancy,
            self.minutes_offline(now),
        )

    def minutes_offline(self, now: float) -> float | None:
        """How long the gate has been without central (None: in contact now)."""
        return self.contact.minutes_offline(now)

    def _react(self, reaction: Reaction | None) -> None:
        if reaction is not None:
            self._carry_out(reaction)

    def _carry_out(self, reaction: Reaction) -> None:
        emits: list[Emit] = []
        records: list[Record] = []
        relay_failed = False
        for action in reaction.actions:
            try:
                if isinstance(action, Pulse):
                    self.drivers.relay.pulse(action.seconds)
                elif isinstance(action, Signal):
                    if self.drivers.indicator is not None:
                        self.drivers.indicator.signal(action.outcome, action.detail)
                elif isinstance(action, Record):
                    records.append(action)
                else:
                    emits.append(action)
            except DriverError as err:
                # The decision still stands and is still recorded; the fault goes upstream.
                logger.error("%s failed: %s", type(action).__name__.lower(), err)
                relay_failed = relay_failed or isinstance(action, Pulse)
        if relay_failed:
            emits = [Emit(e.kind, {**e.data, "relay_failed": True}) for e in emits]
        if any(isinstance(a, Pulse) for a in reaction.actions):
            self._set_fault(Fault.RELAY_FAILED, relay_failed)
        if emits or records:
            now = self.clock.time()
            stream = self.store.stream_name(self.role.name)
            with self.store.transaction() as tx:
                for e in emits:
                    tx.emit(stream, e.kind, now, e.data)
                for r in records:
                    self.store.passages.add(r.passage)
            for e in emits:
                self.counters.events[e.kind] = self.counters.events.get(e.kind, 0) + 1
                if e.kind == "gate.passage":
                    self._count_settlement(e.data)
            if records:
                self.presence.recorded([r.passage for r in records])
            if self._online:
                self._pump_outbox()

    def _count_settlement(self, data: dict[str, Any]) -> None:
        passage, decision = data.get("passage"), data.get("decision")
        if not passage or not decision or not passage.get("settled"):
            return
        charged = sum(c["amount_minor"] for c in decision.get("charges", ()))
        applied = sum(
            c["amount_minor"]
            for c in decision.get("credits", ())
            if c.get("code") == "deposit.applied"
        )
        self.counters.charged_minor += charged - applied if charged > applied else 0

    # ------------------------------------------------------------- rules, presence

    def _load_rules(self) -> None:
        """Parse the site's rules from the catalog copy (after a page or a snapshot)."""
        if self.cfg.gate.admission != "tariffs":
            return
        try:
            document = self.store.catalog.rules()
            site = (
                None
                if document is None
                else parse_catalog(
                    {"version": self.store.rules_version or self.store.catalog_version, **document}
                )
            )
            if site is not None:
                check_gate(site, gate_model(self.cfg.gate, self.device_id))
        except (CatalogError, RulesInputError, StoreError, ValueError, KeyError) as err:
            logger.error("the site's rules cannot be used here: %s", err)
            self.site = None
            self._set_fault(Fault.RULES_UNUSABLE, True)
            return
        if site is not None and site != self.site:
            logger.info("site rules of catalog v%d in force", site.catalog_version)
        self.site = site
        self._set_fault(Fault.RULES_UNUSABLE, site is None)

    # ------------------------------------------------------------------- MQTT

    def _on_link_up(self, up: LinkUp) -> None:
        self._online = True
        self.contact.link(True, self.clock.time())
        self._epoch = up.epoch
        self.outbox.reset()
        self._publish_status()
        self.catalog.reset()
        self.catalog.request(force=self.store.catalog_version == 0)
        self.presence.reconnected(self.clock.time())
        # Peers that reconnect after us (a restarted broker forgot every session) missed
        # that: share once more when they should all be back.
        self._reshare_at = self.clock.monotonic() + self.cfg.mqtt.reconnect_max + 5.0

    def _on_message(self, msg: Incoming) -> None:
        t = self.topics
        dev = self.device_id
        try:
            if msg.topic == t.ack(dev):
                ack = protocol.decode(protocol.Ack, msg.payload)
                self._check_device(ack.device)
                self.outbox.on_ack(dict(ack.streams))
            elif msg.topic == t.catalog_head:
                self.catalog.on_head(protocol.decode(protocol.CatalogHead, msg.payload))
            elif msg.topic == t.catalog_page(dev):
                self.catalog.on_reply(msg.payload)
            elif msg.topic == t.status(dev):
                self._on_own_status(protocol.decode(protocol.Status, msg.payload))
            elif msg.topic == t.central_status:
                status = protocol.decode(protocol.CentralStatus, msg.payload)
                self.contact.status(status, self.clock.time())
            elif (peer := t.parse_presence_topic(msg.topic)) is not None:
                self.presence.on_batch(peer, msg.payload)
            else:
                self._rate.warning("topic", "ignoring message on unexpected topic %s", msg.topic)
        except ProtocolError as err:
            self.counters.rejected_messages += 1
            self._rate.warning(
                protocol.rejection_code(err), "rejected message on %s: %s", msg.topic, err
            )

    def _check_device(self, device: str) -> None:
        if device != self.device_id:
            raise ProtocolError(f"reject.wrong_device: addressed to {device!r}")

    def _on_own_status(self, status: protocol.Status) -> None:
        """Re-assert the birth if the retained status says otherwise (a will from an older
        connection, or a broker that restored an old retained message)."""
        if not self._online:
            return
        if status.state != "online" or status.epoch != self._epoch:
            self._publish_status()

    def _on_catalog_applied(self, rules_changed: bool) -> None:
        if rules_changed or self.site is None:
            self._load_rules()
        if self.catalog.caught_up:
            self._set_fault(Fault.STORE_REBUILT, False)

    def _publish_event_batch(self, topic: str, payload: bytes) -> bool:
        return self.link.publish(topic, payload, qos=1)

    def _pump_outbox(self) -> None:
        self.outbox.pump(self.clock.monotonic())

    def _status(self, state: str, epoch: int) -> protocol.Status:
        return protocol.Status(
            device=self.device_id,
            role=self.role.name,
            state=state,  # type: ignore[arg-type]
            epoch=max(epoch, 1),
            ts=self.clock.time(),
            versions=protocol.Versions(
                software=__version__, config=0, catalog=self.store.catalog_version
            ),
            outbox_depth=self.store.outbox_depth(),
            faults=sorted(self.faults),
        )

    def _will(self, epoch: int) -> Will:
        payload = protocol.Status(
            device=self.device_id,
            role=self.role.name,
            state="offline",
            epoch=epoch,
            ts=self.clock.time(),
            outbox_depth=0,
        )
        return Will(self.topics.status(self.device_id), protocol.encode(payload))

    def _publish_status(self) -> None:
        if self._online:
            status = self._status("online", self._epoch)
            self.link.publish(
                self.topics.status(self.device_id), protocol.encode(status), retain=True
            )
        self._next_status = self.clock.monotonic() + STATUS_EVERY

    def _publish_offline(self) -> None:
        if self._online and self.link.connected:
            status = self._status("offline", self._epoch)
            self.link.publish(
                self.topics.status(self.device_id), protocol.encode(status), retain=True
            )

    # ------------------------------------------------------------ housekeeping

    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + 1.0
        self._notify("WATCHDOG=1")
        wall = self.clock.time()
        self.role.prune(wall)
        self.presence.occupancy.expire(wall)
        if self._reshare_at is not None and now >= self._reshare_at and self._online:
            self._reshare_at = None
            self.presence.reconnected(wall)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            self.store.passages.prune(wall - KEEP_SECONDS)
        if not self._reader_started and now >= self._next_reader_try:
            self._start_reader()
        self._set_fault(Fault.CATALOG_EMPTY, self.store.catalog_version == 0)
        self.catalog.request()
        if now >= self._next_status:
            self._publish_status()

    def _start_reader(self) -> None:
        try:
            self.drivers.rfid.start(self.on_uid, self.on_reader_health)
        except DriverError as err:
            if Fault.READER_DOWN not in self.faults:
                logger.error("reader did not start: %s (retrying every %.0f s)", err, READER_RETRY)
            self._set_fault(Fault.READER_DOWN, True)
            self._next_reader_try = self.clock.monotonic() + READER_RETRY
            return
        self._reader_started = True
        self._set_fault(Fault.READER_DOWN, False)

    def _on_reader_health(self, health: ReaderHealth) -> None:
        self._set_fault(Fault.READER_DOWN, not health.ok)

    def _set_fault(self, fault: str, present: bool) -> None:
        changed = (fault in self.faults) != present
        if not changed:
            return
        if present:
            self.faults.add(fault)
        else:
            self.faults.discard(fault)
        if self.drivers.indicator is not None and present:
            self.drivers.indicator.signal(fault)
        self._publish_status()

    def _recover_store(self, reason: str) -> None:
        """The store failed mid-run: reopen it, rebuilding from what can be salvaged."""
        try:
            self.store.close()
        except sqlite3.Error as err:
            logger.warning("closing the failed store: %s", err)
        self.store = DeviceStore(self.store.path, self.store.synchronous, force_rebuild=reason)
        self.outbox = OutboxSender(
            self.store,
            self.cfg.outbox,
            self.device_id,
            self.topics.events(self.device_id),
            self._publish_event_batch,
        )
        self._set_fault(Fault.STORE_REBUILT, True)
        self.presence.store = self.store
        self.presence.load(self.clock.time())
        self._load_rules()
        self.catalog.store = self.store
        self.catalog.request(force=True)

    # ---------------------------------------------------------------- reports

    def snapshot(self) -> dict[str, Any]:
        """Counters for diagnostics and the demo (read on the owner thread)."""
        return {
            "device": self.device_id,
            "taps": self.counters.taps,
            "granted": self.counters.granted,
            "denied": self.counters.denied,
            "debounced": self.counters.debounced,
            "rotations": self.counters.rotations,
            "pending_passages": self.role.pending,
            "emitted": sum(self.store.emitted().values()),
            "outbox_depth": self.store.outbox_depth(),
            "catalog_version": self.store.catalog_version,
            "faults": sorted(self.faults),
            "exits_refused_owing": self.counters.exits_refused_owing,
            "charged_minor": self.counters.charged_minor,
            "peer_passages": self.presence.heard,
            "minutes_offline": self.minutes_offline(self.clock.time()),
        }
