"""Words on the kiosk screens: text that fits its box, set in the shipped DejaVu fonts.

The display board (kiosk_ui/board.py) and the dispenser's touch screen
(kiosk_ui/dispenser_screen.py) draw all their words through one :class:`TextPainter`:

- the fonts are the DejaVu faces in kiosk_ui/fonts (pygame's default font has no arrow),
  loaded when the painter is made, so a missing font fails at start, not in front of a
  customer;
- a text too large for its box is set smaller, down to :data:`MIN_SHRINK` of its size, and
  then cut short with an ellipsis (where cutting is allowed: a service name may lose its
  end, a message may not);
- each text is rendered once and kept (keyed by words, size, weight and colours) in a cache
  that forgets the least recently used: re-rendering all text every frame is the slow path
  (HARDWARE_NOTES); the sizes fitted and the texts shortened are remembered too;
- what was drawn where in the current frame is recorded as :class:`DrawnText` (the screens'
  ``last_layout``, for tests and a debug overlay).

A painter belongs to one screen and runs on the main thread, like pygame.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import pygame
import pygame.freetype

from entrada.errors import EntradaError

logger = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
REGULAR_FONT = "DejaVuSans.ttf"
BOLD_FONT = "DejaVuSans-Bold.ttf"

Color = tuple[int, int, int]

#: Text is made smaller to fit its box down to this share of its size, then shortened.
MIN_SHRINK = 0.7
#: No text is set smaller than this, px.
MIN_SIZE = 6


class DrawnText(NamedTuple):
    """One piece of text in the last frame and the rectangle it covered on screen."""

    text: str
    rect: pygame.Rect


class TextPainter:
    """Draws text into boxes for one screen, from caches kept between frames.

    ``fg`` and ``bg`` are the colours :meth:`put` uses when it is not told others. A font
    that cannot be loaded raises ``error`` (the screen's own :class:`EntradaError`), saying
    "``owner`` font …"."""

    def __init__(
        self,
        fonts_dir: str | Path,
        cache_size: int,
        *,
        fg: Color,
        bg: Color,
        error: type[EntradaError],
        owner: str,
    ) -> None:
        self._paths = {False: Path(fonts_dir) / REGULAR_FONT, True: Path(fonts_dir) / BOLD_FONT}
        self._fg = fg
        self._bg = bg
        self._error = error
        self._owner = owner
        #: What was drawn in the current frame, in drawing order (see :meth:`new_frame`).
        self.drawn: list[DrawnText] = []
        pygame.font.init()
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        for bold in (False, True):  # a missing font fails here, not in the middle of a show
            self._font(12, bold)
        self._texts: OrderedDict[tuple[object, ...], pygame.Surface] = OrderedDict()
        self._cache_size = cache_size
        self._fits: dict[tuple[object, ...], int] = {}
        self._shortened: dict[tuple[object, ...], str] = {}

    @property
    def cached(self) -> int:
        """How many rendered texts are kept for the next frames."""
        return len(self._texts)

    def new_frame(self) -> list[DrawnText]:
        """Start recording a new frame; return the (new) list :meth:`put` records into.

        The screen keeps that list as its ``last_layout`` and may add to it what it draws
        by other means (the board's ticker)."""
        self.drawn = []
        return self.drawn

    def put(
        self,
        surface: pygame.Surface,
        text: str,
        box: pygame.Rect,
        size: int,
        *,
        bold: bool = False,
        fg: Color | None = None,
        bg: Color | None = None,
        align: str = "left",
        cut: bool = True,
    ) -> pygame.Rect:
        """Draw ``text`` into ``box`` at ``size`` or smaller, so that it fits, aligned
        ``left``, ``right`` or ``center``; record it and return its rect (an empty one at
        the box's corner, recording nothing, when there is no text or no room).

        Text that would have to shrink below :data:`MIN_SHRINK` of ``size`` is cut short
        with an ellipsis when ``cut``; otherwise it shrinks as far as it must."""
        if not text or box.w <= 0 or box.h <= 0:
            return pygame.Rect(box.x, box.y, 0, 0)
        fitted = self._fit(text, size, bold, box.w, box.h)
        floor = max(MIN_SIZE, int(size * MIN_SHRINK))
        if cut and fitted < floor:
            room = min(floor, self._fit("Ag", size, bold, box.w, box.h))
            text = self._shorten(text, room, bold, box.w)
            fitted = self._fit(text, size, bold, box.w, box.h)
        fg = self._fg if fg is None else fg
        bg = self._bg if bg is None else bg
        rendered = self.render(text, fitted, bold, fg, bg)
        w, h = rendered.get_size()
        if align == "right":
            x = box.right - w
        elif align == "center":
            x = box.x + (box.w - w) // 2
        else:
            x = box.x
        rect = pygame.Rect(x, box.y + (box.h - h) // 2, w, h)
        surface.blit(rendered, rect)
        self.drawn.append(DrawnText(text, rect))
        return rect

    def render(self, text: str, size: int, bold: bool, fg: Color, bg: Color) -> pygame.Surface:
        """``text`` rendered on an opaque ``bg`` (fast to blit), from the cache when it can."""
        key = (text, size, bold, fg, bg)
        rendered = self._texts.get(key)
        if rendered is not None:
            self._texts.move_to_end(key)
            return rendered
        rendered = self._font(size, bold).render(text, True, fg, bg)
        if pygame.display.get_surface() is not None:
            rendered = rendered.convert()
        self._texts[key] = rendered
        if len(self._texts) > self._cache_size:
            self._texts.popitem(last=False)
        return rendered

    def missing_glyphs(self, text: str, bold: bool = False) -> str:
        """The characters of ``text`` the font has no glyph for ("" when all are drawn).

        Asked of FreeType directly: ``pygame.font.Font.metrics`` answers for a missing glyph
        with the box it draws instead."""
        pygame.freetype.init()
        face = pygame.freetype.Font(str(self._paths[bold]), 24)
        metrics = face.get_metrics(text)
        return "".join(ch for ch, m in zip(text, metrics, strict=True) if m is None)

    def _fit(self, text: str, size: int, bold: bool, max_w: int, max_h: int) -> int:
        """The largest font size up to ``size`` at which ``text`` fits ``max_w`` x ``max_h``."""
        key = (text, size, bold, max_w, max_h)
        fitted = self._fits.get(key)
        if fitted is None:
            fitted = max(MIN_SIZE, size)
            w, h = self._font(fitted, bold).size(text)
            if w > max_w or h > max_h:
                fitted = max(MIN_SIZE, int(fitted * min(max_w / w, max_h / h)))
                while fitted > MIN_SIZE:
                    w, h = self._font(fitted, bold).size(text)
                    if w <= max_w and h <= max_h:
                        break
                    fitted -= 1
            if len(self._fits) > 4 * self._cache_size:
                self._fits.clear()
            self._fits[key] = fitted
        return fitted

    def _shorten(self, text: str, size: int, bold: bool, max_w: int) -> str:
        """The longest start of ``text``, plus "…", no wider than ``max_w`` at ``size``."""
        key = (text, size, bold, max_w)
        short = self._shortened.get(key)
        if short is None:
            font = self._font(size, bold)
            low, high = 0, len(text)  # the longest prefix that fits lies in [low, high]
            while low < high:
                mid = (low + high + 1) // 2
                if font.size(text[:mid].rstrip() + "…")[0] <= max_w:
                    low = mid
                else:
                    high = mid - 1
            short = text[:low].rstrip() + "…"
            if len(self._shortened) > self._cache_size:
                self._shortened.clear()
            self._shortened[key] = short
        return short

    def _font(self, size: int, bold: bool) -> pygame.font.Font:
        font = self._fonts.get((size, bold))
        if font is None:
            path = self._paths[bold]
            try:
                font = pygame.font.Font(str(path), size)
            except (OSError, pygame.error) as err:
                raise self._error(f"{self._owner} font {path} cannot be loaded: {err}") from err
            self._fonts[(size, bold)] = font
        return font
