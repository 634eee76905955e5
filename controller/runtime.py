"""The gate's runtime: taps, presses and rotations become decisions, relay pulses, events
and shared passages.

:class:`~controller.device_core.DeviceCore` gives it the owner thread, inbox, link,
outbox and status. On a tap the gate asks its role what to do and carries that out:
relay and indicator first (a visitor is never kept waiting on a disk write), then the
event and the state it records in one SQLite transaction. It also applies catalog pages
and shares passages with its peers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.catalog_sync import CatalogSync
from controller.clock import Clock
from controller.commands import (
    CommandCode,
    CommandHandler,
    CommandOutcome,
    IdentifyArgs,
    OpenGateArgs,
    ResyncArgs,
)
from controller.device_core import IDENTIFY_SIGNAL, DeviceCore
from controller.inputs import Press, ReaderHealth, Rotation, Tap
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
from controller.store import DeviceStore
from drivers.registry import DriverSet
from entrada import __version__, protocol
from entrada.codes import Fault, Outcome
from entrada.errors import DriverError, StoreError
from entrada.mqtt import Incoming

logger = logging.getLogger(__name__)

READER_RETRY = 10.0  # retry starting a reader that failed, s
PRUNE_EVERY = 3600.0  # forget old passages that consumed nothing, s


@dataclass
class Counters:
    taps: int = 0
    granted: int = 0
    denied: int = 0
    debounced: int = 0
    rotations: int = 0
    #: Exits refused because something was owed (``denied.owing``).
    exits_refused_owing: int = 0
    #: Money settled at final exits, in minor units (charges less the deposit's credit).
    charged_minor: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Events recorded, by kind (gate.passage, gate.annulled, ...).
    events: dict[str, int] = field(default_factory=dict)


class DeviceRuntime(DeviceCore):
    """The gate: everything it does, driven from one thread by :meth:`run`."""

    role_name = "gate"

    def __init__(
        self,
        cfg: DeviceConfig,
        drivers: DriverSet,
        store: DeviceStore,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.drivers = drivers
        self.role = GateRole(cfg.gate, cfg.device.id, rotation=drivers.rotation is not None)
        self.counters = Counters()
        super().__init__(
            cfg.device.id,
            cfg.device.site,
            cfg.mqtt,
            cfg.outbox,
            store,
            clock=clock,
            notify=notify,
            indicator=drivers.indicator,
        )
        self._reader_started = False
        self._next_reader_try = 0.0
        self._next_prune = 0.0
        self.site: Site | None = None
        #: Monotonic time to share recent passages once more after a reconnect.
        self._reshare_at: float | None = None
        t = self.topics
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

    def subscriptions(self) -> list[tuple[str, int]]:
        t = self.topics
        subscriptions = [(t.catalog_page(self.device_id), 1), (t.catalog_head, 1)]
        if self.cfg.presence.share:
            subscriptions.append((t.all_presence, 1))
        return subscriptions

    # ------------------------------------------------------------ other threads

    def on_uid(self, uid: str) -> None:
        self._enqueue(Tap(uid, self.clock.monotonic()))

    def on_reader_health(self, ok: bool, reason: str) -> None:
        self._enqueue(ReaderHealth(ok, reason))

    def on_press(self, button: str) -> None:
        self._enqueue(Press(button, self.clock.monotonic()))

    def on_rotation(self) -> None:
        self._enqueue(Rotation(self.clock.monotonic()))

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.drivers.relay.release()
        self._start_reader()
        if self.drivers.buttons is not None:
            self.drivers.buttons.start(self.on_press)
        if self.drivers.rotation is not None:
            self.drivers.rotation.start(self.on_rotation)
        super().start()
        logger.info("gate %s: catalog v%d", self.device_id, self.store.catalog_version)

    def urgent(self, item: object) -> bool:
        """Visitors first: taps, presses and rotations (in their order of arrival) are
        handled before acks, pages and link changes queued with them."""
        return isinstance(item, Tap | Press | Rotation)

    def after_pass(self) -> None:
        """Passages waiting for a rotation are checked on every pass (every TICK when
        idle), so an annulment comes soon after its deadline."""
        if self.role.pending:
            with self.guard("pending passages"):
                self._react(self.role.on_tick(self.clock.time()))
        if self._online:
            self.presence.pump()

    def shutdown_steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("release relay", self.drivers.relay.release),
            ("stop reader", self.drivers.rfid.stop),
            ("annul pending passages", lambda: self._react(self.role.on_stop(self.clock.time()))),
        ]

    def close_drivers(self) -> None:
        self.drivers.close()

    # ---------------------------------------------------------------- dispatch

    def handle_item(self, item: object) -> bool:
        if isinstance(item, Tap):
            self._on_tap(item)
        elif isinstance(item, Press):
            self._carry_out(self.role.on_press(item.button, self.clock.time()))
        elif isinstance(item, Rotation):
            self.counters.rotations += 1
            self._carry_out(self.role.on_rotation(self.clock.time()))
        elif isinstance(item, ReaderHealth):
            self._on_reader_health(item)
        else:
            return False
        return True

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
            self.set_fault(Fault.RELAY_FAILED, relay_failed)
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
                self.pump_outbox()

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
            self.set_fault(Fault.RULES_UNUSABLE, True)
            return
        if site is not None and site != self.site:
            logger.info("site rules of catalog v%d in force", site.catalog_version)
        self.site = site
        self.set_fault(Fault.RULES_UNUSABLE, site is None)

    # ------------------------------------------------------------------- MQTT

    def on_online(self) -> None:
        self.catalog.reset()
        self.catalog.request(force=self.store.catalog_version == 0)
        self.presence.reconnected(self.clock.time())
        # Peers that reconnect after us (a restarted broker forgot every session) missed
        # that: share once more when they should all be back.
        self._reshare_at = self.clock.monotonic() + self.cfg.mqtt.reconnect_max + 5.0

    def handle_message(self, msg: Incoming) -> bool:
        t = self.topics
        if msg.topic == t.catalog_head:
            self.catalog.on_head(protocol.decode(protocol.CatalogHead, msg.payload))
        elif msg.topic == t.catalog_page(self.device_id):
            self.catalog.on_reply(msg.payload)
        elif (peer := t.parse_presence_topic(msg.topic)) is not None:
            self.presence.on_batch(peer, msg.payload)
        else:
            return False
        return True

    def _on_catalog_applied(self, rules_changed: bool) -> None:
        if rules_changed or self.site is None:
            self._load_rules()
        if self.catalog.caught_up:
            self.set_fault(Fault.STORE_REBUILT, False)

    def versions(self) -> protocol.Versions:
        return protocol.Versions(software=__version__, config=0, catalog=self.store.catalog_version)

    # ------------------------------------------------------------ housekeeping

    def on_housekeeping(self, now: float) -> None:
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
        self.set_fault(Fault.CATALOG_EMPTY, self.store.catalog_version == 0)
        self.catalog.request()

    def _start_reader(self) -> None:
        try:
            self.drivers.rfid.start(self.on_uid, self.on_reader_health)
        except DriverError as err:
            if Fault.READER_DOWN not in self.faults:
                logger.error("reader did not start: %s (retrying every %.0f s)", err, READER_RETRY)
            self.set_fault(Fault.READER_DOWN, True)
            self._next_reader_try = self.clock.monotonic() + READER_RETRY
            return
        self._reader_started = True
        self.set_fault(Fault.READER_DOWN, False)

    def _on_reader_health(self, health: ReaderHealth) -> None:
        self.set_fault(Fault.READER_DOWN, not health.ok)

    def on_store_rebuilt(self) -> None:
        self.presence.store = self.store
        self.presence.load(self.clock.time())
        self._load_rules()
        self.catalog.store = self.store
        self.catalog.request(force=True)

    # --------------------------------------------------------- commands, self-check

    def command_handlers(self) -> dict[str, CommandHandler]:
        return {
            "open-gate": self._cmd_open_gate,
            "identify": self._cmd_identify,
            "resync": self._cmd_resync,
        }

    def _cmd_open_gate(self, args: OpenGateArgs, now: float) -> CommandOutcome:
        """One relay pulse, recorded as ``gate.remote_open`` like any opening."""
        seconds = args.seconds or self.cfg.gate.relay_pulse
        data = {"seconds": seconds, "direction": self.cfg.gate.direction}
        opening = (
            Pulse(seconds),
            Signal(Outcome.MANUAL_OPEN),
            Emit("gate.remote_open", data),
        )
        self._carry_out(Reaction(Outcome.MANUAL_OPEN, opening))
        if Fault.RELAY_FAILED in self.faults:
            return CommandOutcome(False, CommandCode.FAILED, {"reason": "the relay failed", **data})
        return CommandOutcome(True, CommandCode.DONE, data)

    def _cmd_identify(self, args: IdentifyArgs, now: float) -> CommandOutcome:
        if self.drivers.indicator is None:
            return CommandOutcome(False, CommandCode.FAILED, {"reason": "no indicator fitted"})
        self.drivers.indicator.signal(IDENTIFY_SIGNAL, {"seconds": args.seconds})
        return CommandOutcome(True, CommandCode.DONE, {"seconds": args.seconds})

    def _cmd_resync(self, args: ResyncArgs, now: float) -> CommandOutcome:
        if args.full:
            return CommandOutcome(
                False,
                CommandCode.FAILED,
                {"reason": "a gate cannot ask for a full snapshot; central sends one when needed"},
            )
        self.catalog.reset()
        self.catalog.request(force=True)
        return CommandOutcome(
            True, CommandCode.DONE, {"catalog_version": self.store.catalog_version}
        )

    def self_check(self) -> str | None:
        """The reader must be started and answering."""
        if not self._reader_started:
            return f"the {self.cfg.drivers.rfid} reader did not start"
        if Fault.READER_DOWN in self.faults:
            return f"the {self.cfg.drivers.rfid} reader is down"
        return None

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
