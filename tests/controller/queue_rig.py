"""What the dispenser and display board tests share: their configs built from dicts, a
plain MQTT client standing where central's queue engine stands, a dispenser running on its
own thread and a display board driven frame by frame on the test's (main) thread.

:class:`FakeCentral` publishes the retained central status and queue board, answers
ticket and lease requests (or refuses them, or stays silent and lets a test answer
late), stores the devices' events keyed on (device, stream, seq) and acknowledges them so
the outboxes drain, and keeps every retained status the devices publish. Its waits use a
condition notified on every message: nothing sleeps. :func:`online_central` and
:func:`rig_maker` are the bodies of the ``central`` and ``make`` fixtures
(tests/controller/conftest.py's ``central`` is the plain one).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

os.environ["SDL_VIDEODRIVER"] = "dummy"  # before anything imports pygame
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.clock import SimClock
from controller.dispenser_runtime import DispenserRuntime
from controller.display_runtime import DisplayRuntime
from controller.roles.dispenser import format_number
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.queue_registry import build_dispenser_drivers
from drivers.sound_sim import SimSound
from entrada import protocol
from entrada.protocol_queue import (
    BoardCall,
    BoardService,
    LeaseReply,
    LeaseRequest,
    QueueBoard,
    QueueTopics,
    TicketReply,
    TicketRequest,
)
from entrada.site import wait_until
from kiosk_ui.voice_clips import clip_path, write_silence
from kiosk_ui.words import spoken_texts

SITE = "t"
DAY = "2025-03-10"
WAIT = 10.0  # the longest any condition is waited for, s

SERVICES = (
    BoardService(service="A", name="Passports", prefix="A", digits=3, waiting=2, est_wait_s=300),
    BoardService(service="B", name="Permits", prefix="B", digits=3, waiting=0, est_wait_s=None),
)

R = TypeVar("R")


def _base(tmp_path: Path, port: int, device_id: str, role: str) -> dict[str, Any]:
    return {
        "device": {
            "id": device_id,
            "site": SITE,
            "role": role,
            "data_dir": str(tmp_path / device_id),
            "run_dir": str(tmp_path / "run"),
        },
        "mqtt": {"port": port, "reconnect_min": 0.05, "reconnect_max": 0.5},
        "outbox": {"ack_timeout": 0.5, "backoff_max": 1.0},
    }


def dispenser_config(
    tmp_path: Path,
    port: int,
    dispenser: dict[str, Any] | None = None,
    device_id: str = "disp-1",
    drivers: dict[str, Any] | None = None,
) -> DeviceConfig:
    """A dispenser on a simulated printer: b1 issues A, b2 issues B (priority)."""
    doc = _base(tmp_path, port, device_id, "dispenser")
    doc["device"]["clock"] = "sim"
    doc["dispenser"] = {
        "site_name": "Town Hall",
        "buttons": {"b1": "A", "b2": "B"},
        "priority_buttons": ["b2"],
        "timezone": "UTC",
        "request_timeout": 0.3,
        "lease_size": 10,
        "lease_low": 3,
        "lease_ahead": 3600.0,
        **(dispenser or {}),
    }
    doc["drivers"] = {"printer": "sim", **(drivers or {})}
    return DeviceConfig.model_validate(doc)


def display_config(
    tmp_path: Path,
    port: int,
    display: dict[str, Any] | None = None,
    device_id: str = "board-1",
    sound: str = "sim",
) -> DeviceConfig:
    """A display board drawing off screen (SDL's dummy driver) and announcing in English."""
    doc = _base(tmp_path, port, device_id, "display")
    doc["display"] = {
        "video_driver": "dummy",
        "fullscreen": False,
        "timezone": "UTC",
        "clips_dir": str(make_clips(tmp_path / "clips")),
        "fps": 30,
        **(display or {}),
    }
    doc["drivers"] = {"sound": sound}
    return DeviceConfig.model_validate(doc)


def make_clips(root: Path) -> Path:
    """A clips folder as kiosk_ui.voice_clips lays it out, every clip 20 ms of silence."""
    if not (root / "chime.wav").exists():
        root.mkdir(parents=True, exist_ok=True)
        write_silence(root / "chime.wav", seconds=0.02)
        write_silence(root / "pause.wav", seconds=0.02)
        for piece in spoken_texts("en", max_number=12):
            target = clip_path(root, "en", piece)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_silence(target, seconds=0.02)
    return root


def call(call_id: str, ticket: str, counter: str = "3", recall: int = 0) -> BoardCall:
    service = ticket[0]
    return BoardCall(
        call_id=call_id,
        ticket=ticket,
        service=service,
        counter=f"c{counter}",
        counter_name=counter,
        called_at=time.time(),
        recall=recall,
    )


# ------------------------------------------------------------------ central


class FakeCentral:
    """A paho client in central's place; see the module docstring.

    ``ticket_mode`` and ``lease_mode`` are ``"answer"``, ``"refuse"`` or ``"silent"``
    (a silent request is kept in ``requests``; :meth:`answer` replies to it later).
    Online numbers of a service start at 1; leased blocks at ``lease_first[(service, day)]``
    (500 unless set), so a printed number tells which way it came.
    """

    def __init__(self, port: int, site: str = SITE) -> None:
        self.topics = protocol.Topics(site)
        self.queue = QueueTopics(self.topics)
        self.ticket_mode = "answer"
        self.lease_mode = "answer"
        self.ack = True
        self.business_day = DAY
        self.day_ends_at = time.time() + 12 * 3600
        #: (service, business day) -> first number of the next block granted.
        self.lease_first: dict[tuple[str, str], int] = {}
        #: Requests from devices, in arrival order: (device, request).
        self.requests: list[tuple[str, TicketRequest | LeaseRequest]] = []
        #: Replies sent, oldest first: (device, reply).
        self.replies: list[tuple[str, TicketReply | LeaseReply]] = []
        #: Events stored, in arrival order, each once: (device, event).
        self.events: list[tuple[str, protocol.Event]] = []
        #: Retained statuses seen, per device, in arrival order.
        self.statuses: dict[str, list[protocol.Status]] = {}
        self._seen: set[tuple[str, str, int]] = set()
        self._numbers: dict[tuple[str, str], int] = {}
        self._board_seq = 0
        self._epoch = 0
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="fake-central", protocol=paho.MQTTv5
        )
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *_args: self._subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not self._subscribed.wait(WAIT):
            raise AssertionError("fake central did not subscribe")

    # ------------------------------------------------------------- publishing

    def set_online(self, online: bool = True) -> None:
        """Central's retained status: a birth (new epoch) or its will (same epoch)."""
        if online:
            self._epoch += 1
        status = protocol.CentralStatus(
            state="online" if online else "offline", epoch=max(self._epoch, 1), ts=time.time()
        )
        self._publish(self.topics.central_status, protocol.encode(status), retain=True)

    def publish_board(
        self,
        calls: tuple[BoardCall, ...] = (),
        *,
        seq: int | None = None,
        ts: float | None = None,
        retain: bool = True,
        services: tuple[BoardService, ...] = SERVICES,
    ) -> QueueBoard:
        if seq is None:
            self._board_seq += 1
            seq = self._board_seq
        board = QueueBoard(
            seq=seq,
            ts=time.time() if ts is None else ts,
            site_name="Town Hall",
            business_day=self.business_day,
            day_ends_at=self.day_ends_at,
            calls=list(calls),
            services=list(services),
        )
        self._publish(self.queue.board, protocol.encode(board), retain=retain)
        return board

    def answer(self, device: str, request: TicketRequest | LeaseRequest) -> None:
        """Reply to ``request`` with a number or a block, whatever the modes say."""
        if isinstance(request, TicketRequest):
            n = self._numbers.get((request.service, self.business_day), 0) + 1
            self._numbers[(request.service, self.business_day)] = n
            reply: TicketReply | LeaseReply = TicketReply(
                request_id=request.request_id,
                ok=True,
                code="ticket.issued",
                service=request.service,
                ticket_id=f"{self.business_day}:{request.service}:{n}",
                number=format_number(request.service, n, 3),
                business_day=self.business_day,
                ahead=2,
                est_wait_s=300,
            )
        else:
            key = (request.service, request.business_day)
            first = self.lease_first.get(key, 500)
            self.lease_first[key] = first + request.size
            reply = LeaseReply(
                request_id=request.request_id,
                ok=True,
                code="lease.granted",
                service=request.service,
                business_day=request.business_day,
                first=first,
                last=first + request.size - 1,
            )
        self._reply(device, reply)

    def refuse(self, device: str, request: TicketRequest | LeaseRequest) -> None:
        if isinstance(request, TicketRequest):
            reply: TicketReply | LeaseReply = TicketReply(
                request_id=request.request_id,
                ok=False,
                code="queue.closed",
                service=request.service,
            )
        else:
            reply = LeaseReply(
                request_id=request.request_id,
                ok=False,
                code="lease.refused",
                service=request.service,
                business_day=request.business_day,
            )
        self._reply(device, reply)

    def resend_last_reply(self) -> None:
        """Send the last reply again, as a redelivery would."""
        self._reply(*self.replies[-1])

    def _reply(self, device: str, reply: TicketReply | LeaseReply) -> None:
        # No wait for the PUBACK: this may run on paho's thread, which must read it.
        self.replies.append((device, reply))
        self.c.publish(self.queue.reply(device), protocol.encode(reply), qos=1)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT)

    # ---------------------------------------------------------------- reading

    def wait(self, pred: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Wait until ``pred()`` is truthy (re-checked on every message) and return it."""
        with self._cond:
            result = self._cond.wait_for(pred, timeout)
        if not result:
            raise AssertionError(f"timed out after {timeout} s waiting for {pred}")
        return result

    def ticket_requests(self, device: str | None = None) -> list[TicketRequest]:
        return [
            r
            for d, r in list(self.requests)
            if isinstance(r, TicketRequest) and device in (None, d)
        ]

    def lease_requests(self, device: str | None = None) -> list[LeaseRequest]:
        return [
            r for d, r in list(self.requests) if isinstance(r, LeaseRequest) and device in (None, d)
        ]

    def events_of(self, kind: str, device: str | None = None) -> list[dict[str, Any]]:
        """The data of stored events of ``kind``, in arrival order."""
        return [e.data for d, e in list(self.events) if e.kind == kind and device in (None, d)]

    def wait_events(self, kind: str, n: int = 1, device: str | None = None) -> list[dict[str, Any]]:
        return self.wait(lambda: len(found := self.events_of(kind, device)) >= n and found)

    def last_status(self, device: str) -> protocol.Status | None:
        statuses = self.statuses.get(device)
        return statuses[-1] if statuses else None

    def wait_fault(self, device: str, fault: str, present: bool = True) -> protocol.Status:
        def has() -> protocol.Status | None:
            status = self.last_status(device)
            online = status is not None and status.state == "online"
            return status if online and (fault in status.faults) == present else None

        return self.wait(has)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    # ---------------------------------------------------------- paho's thread

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, _rc: Any, _props: Any) -> None:
        base = self.topics.base
        client.subscribe(
            [
                (f"{base}/device/+/queue/req", 1),
                (f"{base}/device/+/events", 1),
                (f"{base}/device/+/status", 1),
            ]
        )

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        device, leaf = msg.topic.split("/")[3], msg.topic.split("/", 4)[4]
        payload = bytes(msg.payload)
        with self._cond:
            if leaf == "queue/req":
                self._on_request(device, payload)
            elif leaf == "events":
                self._on_events(device, payload)
            elif leaf == "status" and payload:
                status = protocol.decode(protocol.Status, payload)
                self.statuses.setdefault(device, []).append(status)
            self._cond.notify_all()

    def _on_request(self, device: str, payload: bytes) -> None:
        request = protocol.decode_one_of((TicketRequest, LeaseRequest), payload)
        assert isinstance(request, TicketRequest | LeaseRequest)
        self.requests.append((device, request))
        mode = self.ticket_mode if isinstance(request, TicketRequest) else self.lease_mode
        if mode == "answer":
            self.answer(device, request)
        elif mode == "refuse":
            self.refuse(device, request)

    def _on_events(self, device: str, payload: bytes) -> None:
        batch = protocol.decode(protocol.EventBatch, payload)
        for event in batch.events:
            key = (device, event.stream, event.seq)
            if key not in self._seen:
                self._seen.add(key)
                self.events.append((device, event))
        if not self.ack:
            return
        streams = {}
        for stream in {e.stream for e in batch.events}:
            seq = 0
            while (device, stream, seq + 1) in self._seen:
                seq += 1
            streams[stream] = seq
        ack = protocol.Ack(device=device, streams=streams, ts=time.time())
        self.c.publish(self.topics.ack(device), protocol.encode(ack), qos=1, retain=True)


def online_central(central: FakeCentral) -> Iterator[FakeCentral]:
    """A ``central`` fixture's body (``yield from``): ``central`` online with the board
    published, closed after the test."""
    central.set_online(True)
    central.publish_board()
    yield central
    central.close()


def rig_maker(
    start: Callable[..., R],
    stop: Callable[[R], object],
    ready: Callable[[R], object] | None = None,
) -> Iterator[Callable[..., R]]:
    """A ``make`` fixture's body (``yield from``): ``make(**options)`` is ``start``'s rig,
    then ``ready(rig)`` if given; every rig started is stopped with ``stop`` after the test."""
    rigs: list[R] = []

    def make(**options: Any) -> R:
        rig = start(**options)
        rigs.append(rig)
        if ready is not None:
            ready(rig)
        return rig

    yield make
    for rig in rigs:
        stop(rig)


# --------------------------------------------------------------- dispenser


class DispenserRig:
    """A dispenser runtime on its own thread, its outcomes collected in order."""

    def __init__(self, cfg: DeviceConfig, clock: SimClock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SimClock()
        self.outcomes: list[tuple[str, dict[str, Any]]] = []
        self._taken = 0
        self._cond = threading.Condition()
        drivers = build_dispenser_drivers(cfg.drivers)
        self.printer = drivers.printer
        store = DeviceStore(cfg.device.data_dir / "device.db")
        self.rt = DispenserRuntime(cfg, drivers, store, clock=self.clock, on_outcome=self._record)
        self.thread = threading.Thread(target=self.rt.run, name="dispenser", daemon=True)
        self.thread.start()

    @property
    def device_id(self) -> str:
        return self.cfg.device.id

    def _record(self, code: str, detail: dict[str, Any]) -> None:
        with self._cond:
            self.outcomes.append((code, dict(detail)))
            self._cond.notify_all()

    def press(self, button: str = "b1") -> None:
        self.rt.on_press(button)

    def next_outcome(self, timeout: float = WAIT) -> tuple[str, dict[str, Any]]:
        """The next outcome not yet taken, waiting for it."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.outcomes) > self._taken, timeout):
                raise AssertionError(f"no outcome within {timeout} s after {self.outcomes}")
            self._taken += 1
            return self.outcomes[self._taken - 1]

    def issue(self, button: str = "b1") -> tuple[str, dict[str, Any]]:
        self.press(button)
        return self.next_outcome()

    def leases(self) -> dict[tuple[str, str], list[tuple[int, int, int]]]:
        """(service, day) -> [(first, last, next)], read from the runtime's store."""
        blocks: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        for b in self.rt.leases.blocks():
            blocks.setdefault((b.service, b.business_day), []).append((b.first, b.last, b.next))
        return blocks

    def stop(self) -> None:
        self.rt.request_stop("test over")
        self.thread.join(WAIT)
        if self.thread.is_alive():
            raise AssertionError("the dispenser did not stop")


def wait_leases(rig: DispenserRig, wanted: dict[tuple[str, str], int]) -> None:
    """Wait until the dispenser holds at least ``wanted[(service, day)]`` unused numbers
    (read from its store: the grant is the dispenser's own state, nothing is published)."""

    def enough() -> bool:
        return all(rig.rt.leases.left(s, d) >= n for (s, d), n in wanted.items())

    if not wait_until(enough, WAIT):
        raise AssertionError(f"leases not granted: {rig.leases()}")


# ------------------------------------------------------------------ display


class DisplayRig:
    """A display board driven by :meth:`DisplayRuntime.step` on the test's thread."""

    def __init__(self, cfg: DeviceConfig, sound: SimSound | None) -> None:
        self.cfg = cfg
        self.sound = sound
        store = DeviceStore(cfg.device.data_dir / "device.db")
        self.rt = DisplayRuntime(cfg, store, sound)
        self.rt.start()
        self._closed = False

    @property
    def device_id(self) -> str:
        return self.cfg.device.id

    def until(self, pred: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Run frames until ``pred()`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.rt.step()
            result = pred()
            if result:
                return result
        raise AssertionError(f"timed out after {timeout} s waiting for {pred}")

    def drawn_texts(self) -> list[str]:
        return [t.text for t in self.rt.renderer.last_layout]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.rt.shutdown()
