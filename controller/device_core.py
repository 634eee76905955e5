"""What every device daemon does whatever its role: one owner thread, an inbox, the MQTT
link, the outbox, the retained status and faults, technicians' commands and desired configs.

:class:`DeviceCore` owns these; a role's runtime (the gate's :class:`~controller.runtime.
DeviceRuntime`, the dispenser's and the display's) subclasses it and fills in the hooks:
which topics it needs, what it does with its own inbox items and messages, what it adds to
housekeeping and to the shutdown, which commands it runs (:meth:`command_handlers`) and
how it knows it works (:meth:`self_check`). Drivers, the MQTT link's network thread and the
simulator channel only put items on the inbox; everything else happens on the owner thread,
in :meth:`DeviceCore.serve_once`. Nothing here sleeps except on the inbox.

A runtime runs one config for its whole life. The supervisor
(:mod:`controller.supervisor`) builds it, hands it a
:class:`~controller.supervisor.ConfigSession` (:meth:`DeviceCore.supervise`), and reads
:attr:`DeviceCore.exit_reason` when it ends: a new config to run (``reconfigure``), a
failed self-check (``roll_back``), the ``restart`` command, or a plain ``stop``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from controller.clock import Clock, SystemClock
from controller.commands import (
    CommandCode,
    CommandDesk,
    CommandHandler,
    CommandOutcome,
    DiagnosticsArgs,
    RestartArgs,
    logs_handler,
)
from controller.contact import CentralContact
from controller.inputs import Stop
from controller.outbox import OutboxSender
from controller.store import DeviceStore, next_epoch
from drivers.outputs import Indicator
from entrada import __version__, protocol
from entrada.codes import Fault
from entrada.errors import DriverError, ProtocolError
from entrada.logutil import ThrottledLog
from entrada.mqtt import Incoming, LinkDown, LinkUp, MqttLink, Will
from entrada.settings_common import MqttSection

if TYPE_CHECKING:
    from controller.supervisor import ConfigSession, ConfigStep

logger = logging.getLogger(__name__)

INBOX_MAX = 10_000
TICK = 0.05  # owner loop wake-up when idle, s
STATUS_EVERY = 30.0  # retained status refresh, s
BATCH_MAX = 200  # most inbox items taken in one pass
#: What an indicator is asked to show for the ``identify`` command (blink and beep, with
#: ``{"seconds": s}`` as its detail).
IDENTIFY_SIGNAL = "identify"

#: ``tail(lines, level)``: the newest log lines (``entrada.logring.LogRing.tail``).
LogTail = Callable[[int, str | None], list[str]]


class ExitReason(StrEnum):
    """Why a runtime's loop ended: what its supervisor does next."""

    #: SIGTERM, SIGINT, a closed window: the daemon stops.
    STOP = "stop"
    #: The ``restart`` command: the same config again, in a new runtime.
    RESTART = "restart"
    #: A newer config is staged: a new runtime tries it.
    RECONFIGURE = "reconfigure"
    #: The staged config failed its self-check: back to the last good one.
    ROLL_BACK = "roll_back"


@dataclass(frozen=True)
class Exit(Stop):
    """A stop that says what should follow (any thread may ask, through the inbox)."""

    exit_reason: ExitReason = ExitReason.STOP


class DeviceCore:
    """The role-independent half of a device daemon. Subclasses set :attr:`role_name`."""

    role_name = "device"

    def __init__(
        self,
        device_id: str,
        site: str,
        mqtt: MqttSection,
        outbox_cfg: Any,
        store: DeviceStore,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
        indicator: Indicator | None = None,
    ) -> None:
        self.device_id = device_id
        self.store = store
        self.clock = clock or SystemClock()
        self.indicator = indicator
        self._notify = notify or (lambda _msg: None)
        self.inbox: queue.Queue[object] = queue.Queue(maxsize=INBOX_MAX)
        self.topics = protocol.Topics(site)
        self.faults: set[str] = set()
        self.rejected_messages = 0
        #: Events recorded, by kind.
        self.events: dict[str, int] = {}
        #: Why :meth:`run` ended (read by the supervisor).
        self.exit_reason = ExitReason.STOP
        #: Set by :meth:`supervise`: desired configs and the self-check trial.
        self.config_session: ConfigSession | None = None
        #: The technicians' command desk (made at :meth:`start`, when every handler exists).
        self.commands: CommandDesk | None = None
        self._log_tail: LogTail | None = None
        self._rate = ThrottledLog(logger)
        self._stopping = False
        self._shut_down = False
        self._online = False
        self._epoch = 0
        self._next_status = 0.0
        self._next_housekeeping = 0.0
        self._mqtt_cfg = mqtt
        self._outbox_cfg = outbox_cfg
        self.contact = CentralContact(self.clock.time())
        t = self.topics
        subscriptions = [
            (t.ack(device_id), 1),
            (t.status(device_id), 1),
            (t.central_status, 1),
            (t.config_desired(device_id), 1),
            (t.cmd_request(device_id), 1),
            *self.subscriptions(),
        ]
        self.link = MqttLink(
            device_id,
            mqtt,
            self._enqueue,
            subscriptions=subscriptions,
            will=self._will,
            epoch_source=lambda: next_epoch(store.path, self.clock.time()),
        )
        self.outbox = self._new_outbox()

    # ----------------------------------------------------------------- hooks

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topics the role needs besides its ack, its own status and central's status."""
        return []

    def handle_item(self, item: object) -> bool:
        """Handle a role-specific inbox item; False: not one of the role's."""
        return False

    def handle_message(self, msg: Incoming) -> bool:
        """Handle a message on a role-specific topic (may raise ProtocolError); False:
        not one of the role's topics."""
        return False

    def on_online(self) -> None:
        """The link came up (after the status birth went out)."""

    def on_housekeeping(self, now: float) -> None:
        """Once a second, on the owner thread (``now`` is monotonic)."""

    def on_store_rebuilt(self) -> None:
        """The store was rebuilt mid-run; reload whatever the role keeps from it."""

    def shutdown_steps(self) -> list[tuple[str, Callable[[], None]]]:
        """The role's own fail-safe steps, run first at shutdown, each in its own try."""
        return []

    def close_drivers(self) -> None:
        """Close the role's drivers (after the link is down)."""

    def versions(self) -> protocol.Versions:
        """Software and catalog versions (the config version is filled in from the
        session: :meth:`current_versions`)."""
        return protocol.Versions(software=__version__, config=0, catalog=0)

    def snapshot(self) -> dict[str, Any]:
        """The role's counters, for the ``diagnostics`` command (JSON values)."""
        return {}

    def command_handlers(self) -> dict[str, CommandHandler]:
        """The role's commands (``open-gate``, ``print-test``...) besides the core's
        ``diagnostics``, ``restart`` and ``logs``; called once, at :meth:`start`."""
        return {}

    def self_check(self) -> str | None:
        """What keeps this device from working with its config (a reader that does not
        answer, a printer offline), or None when it works. Asked once a second while a new
        config is on trial: an answer other than None rolls it back. Must not block."""
        return None

    def urgent(self, item: object) -> bool:
        """Items handled before the others taken in the same pass (a visitor's input)."""
        return False

    def after_pass(self) -> None:
        """Called after each pass over the inbox, on the owner thread."""

    # ------------------------------------------------------------ other threads

    def _enqueue(self, item: object) -> None:
        """The only entry point for other threads."""
        self.inbox.put(item)

    def request_stop(
        self, reason: str = "stop requested", exit_reason: ExitReason = ExitReason.STOP
    ) -> None:
        self._enqueue(Exit(reason, exit_reason))

    # ------------------------------------------------------------------ supervisor

    def supervise(self, session: ConfigSession | None, logs: LogTail | None = None) -> None:
        """Before :meth:`run`: the config session (desired configs, the self-check trial
        of a new config) and the log ring's tail (the ``logs`` command). Without a
        session, desired configs are ignored."""
        self.config_session = session
        self._log_tail = logs

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the link and tell systemd we are ready (drivers are the role's)."""
        self.commands = self._new_desk()
        self.link.start()
        self._notify("READY=1")
        logger.info(
            "device %s ready (role %s, outbox %d)",
            self.device_id,
            self.role_name,
            self.store.outbox_depth(),
        )

    def run(self) -> None:
        """Start, serve until a Stop arrives, shut down. Call on the owner thread."""
        try:
            self.start()
            while not self._stopping:
                self.serve_once()
        finally:
            self.shutdown()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def serve_once(self, timeout: float = TICK) -> None:
        """Take what is queued (waiting up to ``timeout`` for the first item), urgent items
        first, then pump the outbox and run housekeeping when due."""
        try:
            items = [self.inbox.get(timeout=timeout)] if timeout > 0 else [self.inbox.get_nowait()]
        except queue.Empty:
            items = []
        while items and len(items) < BATCH_MAX:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        urgent = [i for i in items if self.urgent(i)]
        for item in urgent + [i for i in items if not self.urgent(i)]:
            with self.guard(type(item).__name__):
                self._handle(item)
            if self._stopping:
                break
        if not self._stopping:
            self.after_pass()
        now = self.clock.monotonic()
        if self._online:
            self.pump_outbox()
        if now >= self._next_housekeeping:
            self._housekeeping(now)

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """A store or driver failure while handling ``what`` is logged (and a failed store
        rebuilt); the loop carries on."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            logger.error("device store failed while handling %s: %s", what, err)
            self._recover_store(str(err))
        except DriverError as err:
            logger.error("driver failed while handling %s: %s", what, err)

    def shutdown(self) -> None:
        """Fail-safe steps, each in its own try; a second call does nothing."""
        if self._shut_down:
            return
        self._shut_down = True
        steps: list[tuple[str, Callable[[], None]]] = [
            *self.shutdown_steps(),
            ("publish offline status", self._publish_offline),
            ("stop mqtt", self.link.stop),
            ("close drivers", self.close_drivers),
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
        if isinstance(item, Incoming):
            self._on_message(item)
        elif isinstance(item, LinkUp):
            self._on_link_up(item)
        elif isinstance(item, LinkDown):
            self._online = False
            self.contact.link(False, self.clock.time())
        elif isinstance(item, Stop):
            reason = item.exit_reason if isinstance(item, Exit) else ExitReason.STOP
            self._end(reason, item.reason)
        elif not self.handle_item(item):
            logger.error("unexpected inbox item %r", item)

    def _on_link_up(self, up: LinkUp) -> None:
        self._online = True
        self.contact.link(True, self.clock.time())
        self._epoch = up.epoch
        self.outbox.reset()
        self.publish_status()
        self._send_config_report()
        self.on_online()

    def _end(self, reason: ExitReason, why: str) -> None:
        """End the loop after the item being handled (owner thread)."""
        if reason == ExitReason.STOP:
            logger.info("stopping: %s", why)
        else:
            logger.info("stopping to %s: %s", reason.value.replace("_", " "), why)
        self.exit_reason = reason
        self._stopping = True

    def _on_message(self, msg: Incoming) -> None:
        t = self.topics
        dev = self.device_id
        try:
            if msg.topic == t.ack(dev):
                ack = protocol.decode(protocol.Ack, msg.payload)
                self.check_device(ack.device)
                self.outbox.on_ack(dict(ack.streams))
            elif msg.topic == t.status(dev):
                self._on_own_status(protocol.decode(protocol.Status, msg.payload))
            elif msg.topic == t.central_status:
                status = protocol.decode(protocol.CentralStatus, msg.payload)
                self.contact.status(status, self.clock.time())
            elif msg.topic == t.config_desired(dev):
                self._on_desired(msg)
            elif msg.topic == t.cmd_request(dev):
                self._on_command(msg)
            elif not self.handle_message(msg):
                self._rate.warning("topic", "ignoring message on unexpected topic %s", msg.topic)
        except ProtocolError as err:
            self.rejected_messages += 1
            self._rate.warning(
                protocol.rejection_code(err), "rejected message on %s: %s", msg.topic, err
            )

    def check_device(self, device: str) -> None:
        if device != self.device_id:
            raise ProtocolError(f"reject.wrong_device: addressed to {device!r}")

    def _on_own_status(self, status: protocol.Status) -> None:
        """Re-assert the birth if the retained status says otherwise (a will from an older
        connection, or a broker that restored an old retained message)."""
        if not self._online:
            return
        if status.state != "online" or status.epoch != self._epoch:
            self.publish_status()

    # ----------------------------------------------------------------- events

    def emit(
        self, kind: str, data: dict[str, Any], extra: Callable[[], None] | None = None
    ) -> None:
        """Record an event in the outbox, with ``extra`` (more state writes) in the same
        transaction, then send what is waiting."""
        with self.store.transaction() as tx:
            tx.emit(self.store.stream_name(self.role_name), kind, self.clock.time(), data)
            if extra is not None:
                extra()
        self.events[kind] = self.events.get(kind, 0) + 1
        if self._online:
            self.pump_outbox()

    def pump_outbox(self) -> None:
        self.outbox.pump(self.clock.monotonic())

    def _publish_event_batch(self, topic: str, payload: bytes) -> bool:
        return self.link.publish(topic, payload, qos=1)

    def _new_outbox(self) -> OutboxSender:
        return OutboxSender(
            self.store,
            self._outbox_cfg,
            self.device_id,
            self.topics.events(self.device_id),
            self._publish_event_batch,
        )

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Publish now if online (False: offline or refused by the client)."""
        return self._online and self.link.publish(topic, payload, qos=qos)

    @property
    def online(self) -> bool:
        return self._online

    # ----------------------------------------------------------------- status

    def current_versions(self) -> protocol.Versions:
        """The role's versions with the config version that runs (0: the file alone)."""
        versions = self.versions()
        session = self.config_session
        if session is None:
            return versions
        return versions.model_copy(update={"config": session.version})

    def _status(self, state: str, epoch: int) -> protocol.Status:
        return protocol.Status(
            device=self.device_id,
            role=self.role_name,
            state=state,  # type: ignore[arg-type]
            epoch=max(epoch, 1),
            ts=self.clock.time(),
            versions=self.current_versions(),
            outbox_depth=self.store.outbox_depth(),
            faults=sorted(self.faults),
        )

    def _will(self, epoch: int) -> Will:
        payload = protocol.Status(
            device=self.device_id,
            role=self.role_name,
            state="offline",
            epoch=epoch,
            ts=self.clock.time(),
            outbox_depth=0,
        )
        return Will(self.topics.status(self.device_id), protocol.encode(payload))

    def publish_status(self) -> None:
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

    def set_fault(self, fault: str, present: bool) -> None:
        """Raise or clear a fault: shown on the indicator, reported in the status."""
        if (fault in self.faults) == present:
            return
        if present:
            self.faults.add(fault)
            logger.warning("fault %s", fault)
        else:
            self.faults.discard(fault)
            logger.info("fault %s cleared", fault)
        if self.indicator is not None and present:
            self.indicator.signal(fault)
        self.publish_status()

    # ------------------------------------------------------------ housekeeping

    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + 1.0
        self._notify("WATCHDOG=1")
        self.on_housekeeping(now)
        session = self.config_session
        if session is not None and session.on_trial and not self._stopping:
            self._follow(session.trial_step(self._checked(), now, self.clock.time()))
        if now >= self._next_status:
            self.publish_status()

    def _recover_store(self, reason: str) -> None:
        """The store failed mid-run: reopen it, rebuilding from what can be salvaged."""
        try:
            self.store.close()
        except sqlite3.Error as err:
            logger.warning("closing the failed store: %s", err)
        self.store = DeviceStore(self.store.path, self.store.synchronous, force_rebuild=reason)
        self.outbox = self._new_outbox()
        if self.commands is not None:
            self.commands = self._new_desk()
        if self.config_session is not None:
            self.config_session.rebind(self.store.conn)
        self.set_fault(Fault.STORE_REBUILT, True)
        self.on_store_rebuilt()

    # ---------------------------------------------------------------- configs

    def _on_desired(self, msg: Incoming) -> None:
        """Central's desired config (retained: it comes again on every connect, so what
        the device reports about it is said again too)."""
        if not msg.payload:
            return  # the retained message was cleared
        desired = protocol.decode(protocol.ConfigDesired, msg.payload)
        session = self.config_session
        if session is None:
            self._rate.warning("no-config-session", "desired config ignored: not supervised")
            return
        self._follow(session.on_desired(desired, self.clock.time()))

    def _follow(self, step: ConfigStep) -> None:
        """Carry out what the config session decided."""
        if step.report is not None:
            self.publish(self.topics.config_reported(self.device_id), protocol.encode(step.report))
        self._send_config_report()
        if step.versions_changed:
            self.publish_status()
        if step.exit is not None:
            self._end(step.exit, step.why)

    def _send_config_report(self) -> None:
        """The outcome of the last apply, kept until it has gone out."""
        session = self.config_session
        pending = session.pending_report() if session is not None else None
        if session is None or pending is None or not self._online:
            return
        if self.publish(self.topics.config_reported(self.device_id), protocol.encode(pending)):
            session.report_sent(pending)

    def _checked(self) -> str | None:
        """:meth:`self_check`, with a failing check counted as a problem."""
        try:
            return self.self_check()
        except Exception as err:
            logger.exception("self-check failed")
            return f"the self-check failed: {err}"

    # --------------------------------------------------------------- commands

    def _new_desk(self) -> CommandDesk:
        handlers: dict[str, CommandHandler] = {
            "diagnostics": self._cmd_diagnostics,
            "restart": self._cmd_restart,
        }
        if self._log_tail is not None:
            handlers["logs"] = logs_handler(self._log_tail)
        handlers.update(self.command_handlers())
        return CommandDesk(self.store.conn, self.device_id, handlers, topics=self.topics)

    def _on_command(self, msg: Incoming) -> None:
        if self.commands is None:
            self._rate.warning("no-desk", "command ignored: the device is not started")
            return
        reply = self.commands.on_request(
            msg.payload, msg.response_topic, msg.correlation, self.clock.time(), retained=msg.retain
        )
        if reply is not None and self._online:
            self.link.publish(reply.topic, reply.payload, qos=1, properties=reply.properties())

    def _cmd_diagnostics(self, args: DiagnosticsArgs, now: float) -> CommandOutcome:
        session = self.config_session
        return CommandOutcome(
            True,
            CommandCode.DONE,
            {
                "device": self.device_id,
                "role": self.role_name,
                "time": now,
                "online": self._online,
                "versions": self.current_versions().model_dump(),
                "config": session.describe() if session is not None else None,
                "faults": sorted(self.faults),
                "outbox_depth": self.store.outbox_depth(),
                "rejected_messages": self.rejected_messages,
                "snapshot": self.snapshot(),
            },
        )

    def _cmd_restart(self, args: RestartArgs, now: float) -> CommandOutcome:
        # Through the inbox: the answer goes out before the loop ends.
        self.request_stop("restart command", ExitReason.RESTART)
        return CommandOutcome(True, CommandCode.DONE, {"restarting": True})
