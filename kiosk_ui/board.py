"""The waiting-room display board's screen: who is called to which counter, drawn with pygame.

:class:`BoardRenderer` is a plain object the display runtime calls once a frame, on the
main thread: ``render(view, now, local_time)`` draws a :class:`~kiosk_ui.board_model.BoardView`
and returns the frame. One frame shows

- the current calls, newest first, as big "A042  → 3" rows; a call is highlighted by a
  blinking colour band for ``highlight_seconds`` after the renderer first saw it (a recall
  is seen anew);
- the last calls made, smaller;
- how many wait for each service and about how long;
- the site's name and a clock; a ticker line along the bottom, scrolling by ``now``.

The same code lays this out for a landscape (1920x1080) or portrait (1080x1920) screen.
Words go through a :class:`~kiosk_ui.text.TextPainter`: set in the DejaVu fonts shipped in
kiosk_ui/fonts, fitted to their boxes, rendered once and kept (re-rendering all text every
frame is the slow path, HARDWARE_NOTES); the panels are a background drawn once per
renderer, so a frame is mostly blits. What was drawn where is kept in ``last_layout`` for
tests and for a debug overlay.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pygame

from entrada.errors import EntradaError
from kiosk_ui.board_model import BoardCall, BoardView, ServiceLine
from kiosk_ui.text import FONTS_DIR, Color, DrawnText, TextPainter
from kiosk_ui.words import Words

logger = logging.getLogger(__name__)

LANDSCAPE = (1920, 1080)
PORTRAIT = (1080, 1920)

BACKGROUND: Color = (12, 27, 51)
HEADER_BG: Color = (20, 52, 94)
PANEL_BG: Color = (17, 38, 69)
ROW_BG: Color = (27, 56, 99)
TICKER_BG: Color = (6, 14, 28)
TEXT: Color = (245, 247, 250)
MUTED: Color = (160, 180, 205)
HIGHLIGHT: Color = (255, 184, 28)
HIGHLIGHT_ALT: Color = (255, 222, 120)
HIGHLIGHT_TEXT: Color = (18, 22, 30)


class BoardError(EntradaError):
    """The board cannot draw: a font is missing or unreadable."""


class BoardRenderer:
    """Draws :class:`BoardView` frames for one screen size (main thread only)."""

    def __init__(
        self,
        size: tuple[int, int] = LANDSCAPE,
        fonts_dir: str | Path = FONTS_DIR,
        words: Words | None = None,
        *,
        highlight_seconds: float = 10.0,
        blink_seconds: float = 0.5,
        max_calls: int = 4,
        ticker_speed: float = 140.0,
        text_cache_size: int = 512,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.words = words or Words()
        self.highlight_seconds = highlight_seconds
        self.blink_seconds = blink_seconds
        self.max_calls = max_calls
        #: Ticker scroll speed in pixels per second.
        self.ticker_speed = ticker_speed
        self._painter = TextPainter(
            fonts_dir, text_cache_size, fg=TEXT, bg=PANEL_BG, error=BoardError, owner="board"
        )
        #: What the last frame drew: every text and its rectangle, in drawing order.
        self.last_layout: list[DrawnText] = self._painter.new_frame()
        self._first_seen: dict[tuple[str, int], float] = {}
        #: Screen areas by name: header, calls, recent, services, ticker.
        self.regions = _layout(self.size)
        self._frame = pygame.Surface(self.size)
        self._background = self._draw_background()

    # ------------------------------------------------------------------ public

    def render(
        self,
        view: BoardView,
        now: float,
        local_time: datetime | None = None,
        target: pygame.Surface | None = None,
    ) -> pygame.Surface:
        """Draw ``view`` as it looks at ``now`` (monotonic seconds: highlights, ticker) and
        return the frame: ``target`` (e.g. the display surface, of this renderer's size)
        or the renderer's own surface, reused from frame to frame. ``local_time`` is the
        clock shown (none without it)."""
        surface = target if target is not None else self._frame
        if surface.get_size() != self.size:
            raise ValueError(f"target is {surface.get_size()}, renderer draws {self.size}")
        self.last_layout = self._painter.new_frame()
        surface.blit(self._background, (0, 0))
        self._draw_header(surface, view, local_time)
        self._draw_calls(surface, view, now)
        self._draw_recent(surface, view)
        self._draw_services(surface, view)
        self._draw_ticker(surface, view, now)
        return surface

    @property
    def cached_texts(self) -> int:
        """How many rendered texts are kept for the next frames."""
        return self._painter.cached

    def is_highlighted(self, call: BoardCall, now: float) -> bool:
        """True while ``call`` counts as new (see the module docstring)."""
        seen = self._first_seen.get((call.call_id, call.recall))
        return seen is not None and now - seen < self.highlight_seconds

    def missing_glyphs(self, text: str, bold: bool = False) -> str:
        """The characters of ``text`` the board's font has no glyph for ("" when all drawn)."""
        return self._painter.missing_glyphs(text, bold)

    # ------------------------------------------------------------------ areas

    def _draw_header(
        self, surface: pygame.Surface, view: BoardView, local_time: datetime | None
    ) -> None:
        box = _inset(self.regions["header"], self._pad)
        size = int(box.h * 0.6)
        name_box = box
        if local_time is not None:
            clock = local_time.strftime("%H:%M")
            drawn = self._painter.put(
                surface, clock, box, size, bold=True, bg=HEADER_BG, align="right"
            )
            name_box = pygame.Rect(box.x, box.y, box.w - drawn.w - self._pad, box.h)
        self._painter.put(surface, view.site_name, name_box, size, bold=True, bg=HEADER_BG)

    def _draw_calls(self, surface: pygame.Surface, view: BoardView, now: float) -> None:
        lang = view.language
        title, rows = _split_title(
            _inset(self.regions["calls"], self._pad), self._small_row * 3 // 2
        )
        heading = self._w("board.now_serving", lang)
        self._painter.put(
            surface, heading, _left(title, 0.6), int(title.h * 0.62), bold=True, fg=MUTED
        )
        counter = self._w("board.counter", lang)
        self._painter.put(
            surface, counter, _right(title, 0.4), int(title.h * 0.45), fg=MUTED, align="right"
        )
        self._note_first_seen(view.calls, now)
        calls = view.calls[: self.max_calls]
        if not calls:
            wait = self._w("board.no_calls", lang)
            self._painter.put(surface, wait, rows, int(rows.h * 0.06), fg=MUTED, align="center")
            return
        row_h = rows.h // self.max_calls
        for i, call in enumerate(calls):
            band = pygame.Rect(rows.x, rows.y + i * row_h, rows.w, row_h - self._pad // 2)
            bg, fg = ROW_BG, TEXT
            if self.is_highlighted(call, now):
                seen = self._first_seen[(call.call_id, call.recall)]
                blink = int((now - seen) / self.blink_seconds) % 2
                bg, fg = (HIGHLIGHT_ALT if blink else HIGHLIGHT), HIGHLIGHT_TEXT
            surface.fill(bg, band)
            inner = _inset(band, self._pad)
            size = int(inner.h * 0.8)
            counter = f"→ {call.counter_name}"
            self._painter.put(
                surface, call.ticket, _left(inner, 0.5), size, bold=True, fg=fg, bg=bg
            )
            self._painter.put(
                surface, counter, _right(inner, 0.5), size, bold=True, fg=fg, bg=bg, align="right"
            )

    def _draw_recent(self, surface: pygame.Surface, view: BoardView) -> None:
        title, rows = _split_title(
            _inset(self.regions["recent"], self._pad), self._small_row * 5 // 4
        )
        heading = self._w("board.recent", view.language)
        self._painter.put(surface, heading, title, int(title.h * 0.62), bold=True, fg=MUTED)
        row_h = self._small_row
        size = int(row_h * 0.62)
        for i, call in enumerate(view.recent[: max(0, rows.h // row_h)]):
            line = pygame.Rect(rows.x, rows.y + i * row_h, rows.w, row_h)
            self._painter.put(surface, call.ticket, _left(line, 0.5), size, bold=True)
            self._painter.put(
                surface, f"→ {call.counter_name}", _right(line, 0.5), size, align="right"
            )

    def _draw_services(self, surface: pygame.Surface, view: BoardView) -> None:
        lang = view.language
        title, rows = _split_title(
            _inset(self.regions["services"], self._pad), self._small_row * 5 // 4
        )
        heading = self._w("board.services", lang)
        self._painter.put(surface, heading, title, int(title.h * 0.62), bold=True, fg=MUTED)
        row_h = self._small_row
        size = int(row_h * 0.55)
        for i, line in enumerate(view.services[: max(0, rows.h // row_h)]):
            box = pygame.Rect(rows.x, rows.y + i * row_h, rows.w, row_h)
            count_box = pygame.Rect(box.x + box.w * 46 // 100, box.y, box.w * 30 // 100, box.h)
            waiting = self._w("board.waiting", lang, count=line.waiting)
            self._painter.put(surface, line.name, _left(box, 0.46), size, bold=True)
            self._painter.put(surface, waiting, count_box, size, align="right")
            wait = self._wait_text(line, lang)
            self._painter.put(surface, wait, _right(box, 0.22), size, fg=MUTED, align="right")

    def _draw_ticker(self, surface: pygame.Surface, view: BoardView, now: float) -> None:
        if not view.ticker:
            return
        box = self.regions["ticker"]
        size = int(box.h * 0.55)
        text = self._painter.render(view.ticker, size, False, TEXT, TICKER_BG)
        y = box.y + (box.h - text.get_height()) // 2
        if text.get_width() <= box.w - 2 * self._pad:
            x = box.x + (box.w - text.get_width()) // 2
        else:  # starts at the left edge, leaves to the left, enters again from the right
            travel = (now * self.ticker_speed + box.w - self._pad) % (text.get_width() + box.w)
            x = int(box.right - travel)
        surface.set_clip(box)
        try:
            surface.blit(text, (x, y))
        finally:
            surface.set_clip(None)
        drawn = pygame.Rect(x, y, text.get_width(), text.get_height()).clip(box)
        if drawn.w:
            self.last_layout.append(DrawnText(view.ticker, drawn))

    # ------------------------------------------------------------------ helpers

    @property
    def _pad(self) -> int:
        return max(4, min(self.size) // 60)

    @property
    def _small_row(self) -> int:
        return max(24, max(self.size) // 28)

    def _w(self, key: str, language: str, **params: object) -> str:
        return self.words.get(key, language, **params)

    def _wait_text(self, line: ServiceLine, language: str) -> str:
        if line.est_wait_s is None:
            return self._w("board.wait_unknown", language)
        if line.est_wait_s < 60:
            return self._w("board.wait_under_minute", language)
        return self._w("board.wait_minutes", language, minutes=round(line.est_wait_s / 60))

    def _note_first_seen(self, calls: tuple[BoardCall, ...], now: float) -> None:
        """Remember when each (call, recall) first appeared; forget those gone."""
        current = {(call.call_id, call.recall) for call in calls}
        for key in current:
            self._first_seen.setdefault(key, now)
        for key in [k for k in self._first_seen if k not in current]:
            del self._first_seen[key]

    def _draw_background(self) -> pygame.Surface:
        background = pygame.Surface(self.size)
        background.fill(BACKGROUND)
        background.fill(HEADER_BG, self.regions["header"])
        background.fill(TICKER_BG, self.regions["ticker"])
        half = self._pad // 2
        for name in ("calls", "recent", "services"):
            background.fill(PANEL_BG, _inset(self.regions[name], half))
        if pygame.display.get_surface() is not None:
            background = background.convert()
        return background


def _layout(size: tuple[int, int]) -> dict[str, pygame.Rect]:
    """The board's areas for a screen of ``size``: side by side when wide, stacked when tall."""
    width, height = size
    portrait = height > width
    header_h = round(height * (0.07 if portrait else 0.1))
    ticker_h = round(height * (0.05 if portrait else 0.07))
    body = pygame.Rect(0, header_h, width, height - header_h - ticker_h)
    if portrait:
        calls_h = round(body.h * 0.5)
        recent_h = round(body.h * 0.24)
        calls = pygame.Rect(body.x, body.y, width, calls_h)
        recent = pygame.Rect(body.x, calls.bottom, width, recent_h)
        services = pygame.Rect(body.x, recent.bottom, width, body.bottom - recent.bottom)
    else:
        calls = pygame.Rect(body.x, body.y, round(width * 0.62), body.h)
        side = pygame.Rect(calls.right, body.y, width - calls.w, body.h)
        recent = pygame.Rect(side.x, side.y, side.w, side.h // 2)
        services = pygame.Rect(side.x, recent.bottom, side.w, side.bottom - recent.bottom)
    return {
        "header": pygame.Rect(0, 0, width, header_h),
        "calls": calls,
        "recent": recent,
        "services": services,
        "ticker": pygame.Rect(0, height - ticker_h, width, ticker_h),
    }


def _inset(rect: pygame.Rect, by: int) -> pygame.Rect:
    return rect.inflate(-2 * by, -2 * by)


def _split_title(rect: pygame.Rect, title_h: int) -> tuple[pygame.Rect, pygame.Rect]:
    """A title strip ``title_h`` high at the top of ``rect``, and the rest."""
    return (
        pygame.Rect(rect.x, rect.y, rect.w, title_h),
        pygame.Rect(rect.x, rect.y + title_h, rect.w, rect.h - title_h),
    )


def _left(rect: pygame.Rect, share: float) -> pygame.Rect:
    return pygame.Rect(rect.x, rect.y, int(rect.w * share), rect.h)


def _right(rect: pygame.Rect, share: float) -> pygame.Rect:
    width = int(rect.w * share)
    return pygame.Rect(rect.right - width, rect.y, width, rect.h)
