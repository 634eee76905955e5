"""The display board: central's retained board state on a screen, each new call chimed and
spoken, and confirmed back to central.

pygame owns the main thread (only it may draw): :meth:`DisplayRuntime.run` loops over
frames, and between frames drains the inbox through :meth:`DeviceCore.serve_once`, waiting
on it until the next frame is due, so a board message is drawn in the next frame rather
than at the next tick. The MQTT network thread only enqueues.

A call (a call id and its recall number) not yet confirmed is drawn, then announced;
when its announcement has played to the end (or at once when the board does not announce),
the display records ``display.call_shown`` in its outbox together with the call's key in
its store, in one transaction. Central counts a call as confirmed by this display from
that event. A rebooted display reads the retained board, finds the calls it already
confirmed in its store and does not chime them again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from controller.clock import Clock
from controller.commands import CommandCode, CommandHandler, CommandOutcome, IdentifyArgs
from controller.device_core import DeviceCore
from controller.settings import DeviceConfig
from controller.store import DeviceStore
from drivers.sound import SoundOutput
from entrada import protocol
from entrada.codes import Fault
from entrada.mqtt import Incoming
from entrada.protocol_queue import CALL_SHOWN, QueueBoard, QueueTopics

logger = logging.getLogger(__name__)

CONFIRMED_SCHEMA = """
CREATE TABLE IF NOT EXISTS display_confirmed (
    call_key TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""
#: While an announcement plays, the loop looks this often whether its clip has ended.
SPEAKING_POLL = 0.01  # s
KEEP_CONFIRMED = 3 * 86400.0  # forget confirmations older than this, s


@dataclass
class DisplayCounters:
    boards: int = 0
    frames: int = 0
    shown: int = 0
    confirmed: int = 0


@dataclass
class _Showing:
    """A call drawn or about to be, waiting for its announcement to end."""

    call_id: str
    recall: int
    ticket: str
    counter: str
    shown_at: float | None = None
    announced: bool = False


@dataclass
class FrameHooks:
    """Callbacks for tests and benchmarks (owner thread)."""

    on_frame: Callable[[QueueBoard | None, float], None] | None = None
    keys_shown: list[str] = field(default_factory=list)


def call_key(call_id: str, recall: int) -> str:
    return f"{call_id}|{recall}"


class DisplayRuntime(DeviceCore):
    """Everything a display board does; :meth:`run` must be called on the main thread."""

    role_name = "display"

    def __init__(
        self,
        cfg: DeviceConfig,
        store: DeviceStore,
        sound: SoundOutput | None,
        clock: Clock | None = None,
        notify: Callable[[str], None] | None = None,
        hooks: FrameHooks | None = None,
    ) -> None:
        self.cfg = cfg
        self.d = cfg.display
        self.sound = sound
        self.hooks = hooks or FrameHooks()
        super().__init__(
            cfg.device.id, cfg.device.site, cfg.mqtt, cfg.outbox, store, clock=clock, notify=notify
        )
        self.queue = QueueTopics(self.topics)
        store.conn.executescript(CONFIRMED_SCHEMA)
        self.board: QueueBoard | None = None
        self.counters = DisplayCounters()
        self._zone = ZoneInfo(self.d.timezone)
        self._showing: dict[str, _Showing] = {}
        self._dirty = True
        self._renderer: Any = None
        self._announcer: Any = None
        self._surface: Any = None
        self._next_frame = 0.0
        self._identify_until = float("-inf")  # monotonic

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(QueueTopics(self.topics).board, 1)]

    # ------------------------------------------------------------------ screen

    def _open_screen(self) -> None:
        """pygame, the screen and the announcer: on the main thread, at start."""
        if self.d.video_driver:
            os.environ["SDL_VIDEODRIVER"] = self.d.video_driver
        import pygame

        from kiosk_ui.announcer import Announcer
        from kiosk_ui.board import LANDSCAPE, PORTRAIT, BoardRenderer
        from kiosk_ui.words import Words

        pygame.display.init()
        size = LANDSCAPE if self.d.orientation == "landscape" else PORTRAIT
        flags = pygame.FULLSCREEN if self.d.fullscreen else 0
        self._surface = pygame.display.set_mode(size, flags)
        pygame.display.set_caption(f"Entrada board {self.device_id}")
        self._renderer = BoardRenderer(
            size,
            words=Words(self.d.language),
            highlight_seconds=self.d.highlight_seconds,
        )
        if self.sound is not None and self.d.announce:
            self._announcer = Announcer(
                self.sound,
                self.d.clips_dir,
                self.d.language,
                self._announced,
                gap_s=self.d.announce_gap,
            )

    def start(self) -> None:
        """Open the screen and the announcer, then the link (main thread)."""
        self._open_screen()
        super().start()

    def run(self) -> None:
        """Draw frames and serve the inbox until a Stop arrives (main thread)."""
        self.start()
        try:
            while not self.stopping:
                self.step()
        finally:
            self.shutdown()

    def step(self) -> None:
        """One pass of the main loop, after :meth:`start` (main thread): window events,
        the inbox until the next frame is due, the announcer, and the frame when due.
        Tests drive the board with it frame by frame."""
        import pygame

        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.request_stop("window closed")
        wait = 0.0 if self._dirty else max(0.0, self._next_frame - self.clock.monotonic())
        if self._announcer is not None and not self._announcer.idle:
            wait = min(wait, SPEAKING_POLL)  # the next clip starts as soon as one ends
        self.serve_once(timeout=wait)
        mono = self.clock.monotonic()
        if self._announcer is not None:
            self._announcer.pump(mono)
            self.set_fault(Fault.SOUND_DOWN, not self._announcer.healthy)
        if self._dirty or mono >= self._next_frame:
            self._draw(mono)
            pygame.display.flip()
            self._next_frame = mono + 1.0 / self.d.fps

    @property
    def renderer(self) -> Any:
        """The board renderer (its ``last_layout`` tells what the last frame drew); None
        before :meth:`start`."""
        return self._renderer

    def _draw(self, mono: float) -> None:
        view = self.view()
        local = datetime.fromtimestamp(self.clock.time(), self._zone)
        self._renderer.render(view, mono, local, target=self._surface)
        if mono < self._identify_until:
            self._draw_identify(mono)
        self.counters.frames += 1
        self._dirty = False
        now = self.clock.time()
        for key, showing in list(self._showing.items()):  # _confirm pops from it
            if showing.shown_at is None:
                showing.shown_at = now
                self.counters.shown += 1
                self.hooks.keys_shown.append(key)
                if self._announcer is not None:
                    self._announcer.announce(key, showing.ticket, showing.counter)
                else:
                    self._confirm(key)
        if self.hooks.on_frame is not None:
            self.hooks.on_frame(self.board, mono)

    def view(self) -> Any:
        """The board as the renderer draws it."""
        from kiosk_ui.board_model import BoardCall, BoardView, ServiceLine

        board = self.board
        if board is None:
            return BoardView(site_name="", ticker=self.d.ticker, language=self.d.language)

        def call(c: Any) -> BoardCall:
            return BoardCall(c.call_id, c.ticket, c.counter_name, c.service, c.called_at, c.recall)

        return BoardView(
            site_name=board.site_name,
            calls=tuple(call(c) for c in board.calls),
            recent=tuple(call(c) for c in board.recent[: self.d.recent]),
            services=tuple(
                ServiceLine(s.service, s.name, s.waiting, s.est_wait_s) for s in board.services
            ),
            ticker=board.ticker or self.d.ticker,
            language=self.d.language,
        )

    # ----------------------------------------------------------------- board

    def handle_message(self, msg: Incoming) -> bool:
        if msg.topic != self.queue.board:
            return False
        board = protocol.decode(QueueBoard, msg.payload)
        if self.board is not None and board.seq < self.board.seq and board.ts <= self.board.ts:
            return True  # an older board arriving late
        self.board = board
        self.counters.boards += 1
        self._dirty = True
        for c in board.calls:
            key = call_key(c.call_id, c.recall)
            if key not in self._showing and not self._was_confirmed(key):
                self._showing[key] = _Showing(c.call_id, c.recall, c.ticket, c.counter_name)
        return True

    def _was_confirmed(self, key: str) -> bool:
        row = self.store.conn.execute(
            "SELECT 1 FROM display_confirmed WHERE call_key = ?", (key,)
        ).fetchone()
        return row is not None

    def _announced(self, key: str) -> None:
        showing = self._showing.get(key)
        if showing is not None:
            showing.announced = self._announcer is not None and self._announcer.healthy
            self._confirm(key)

    def _confirm(self, key: str) -> None:
        showing = self._showing.pop(key, None)
        if showing is None:
            return
        now = self.clock.time()
        data = {
            "call_id": showing.call_id,
            "recall": showing.recall,
            "ticket": showing.ticket,
            "counter": showing.counter,
            "shown_at": showing.shown_at,
            "confirmed_at": now,
            "announced": showing.announced,
        }

        def remember() -> None:
            self.store.conn.execute(
                "INSERT OR IGNORE INTO display_confirmed (call_key, at) VALUES (?, ?)", (key, now)
            )

        self.emit(CALL_SHOWN, data, extra=remember)
        self.counters.confirmed += 1

    def on_housekeeping(self, now: float) -> None:
        self.store.conn.execute(
            "DELETE FROM display_confirmed WHERE at < ?", (self.clock.time() - KEEP_CONFIRMED,)
        )

    def on_store_rebuilt(self) -> None:
        self.store.conn.executescript(CONFIRMED_SCHEMA)

    def close_drivers(self) -> None:
        if self.sound is not None:
            self.sound.close()
        if self._surface is not None:
            import pygame

            pygame.display.quit()
            self._surface = None

    # --------------------------------------------------------- commands, self-check

    def command_handlers(self) -> dict[str, CommandHandler]:
        return {"identify": self._cmd_identify}

    def _cmd_identify(self, args: IdentifyArgs, now: float) -> CommandOutcome:
        """The device id blinks over the board for ``seconds``, with the chime once."""
        from kiosk_ui.voice_clips import clip_path
        from kiosk_ui.words import CHIME

        self._identify_until = self.clock.monotonic() + args.seconds
        self._dirty = True
        chime = clip_path(self.d.clips_dir, self.d.language, CHIME)
        quiet = self._announcer is None or self._announcer.idle
        if self.sound is not None and quiet and chime.is_file():
            self.sound.play(chime)
        return CommandOutcome(True, CommandCode.DONE, {"seconds": args.seconds})

    def _draw_identify(self, mono: float) -> None:
        import pygame

        if int(mono * 2) % 2:
            return  # blink: every other half second
        width, height = self._surface.get_size()
        band = pygame.Rect(0, height // 3, width, height // 3)
        self._surface.fill((255, 200, 0), band)
        font = pygame.font.Font(None, height // 6)
        text = font.render(self.device_id, True, (0, 0, 0))
        self._surface.blit(text, text.get_rect(center=band.center))

    def self_check(self) -> str | None:
        return None if self._surface is not None else "the screen did not open"

    def snapshot(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            "role": self.role_name,
            "boards": self.counters.boards,
            "frames": self.counters.frames,
            "shown": self.counters.shown,
            "confirmed": self.counters.confirmed,
            "board_seq": None if self.board is None else self.board.seq,
            "outbox_depth": self.store.outbox_depth(),
            "faults": sorted(self.faults),
        }
