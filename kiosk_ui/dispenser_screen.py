"""The ticket dispenser's touch screen: one big button per service, drawn with pygame.

:class:`DispenserScreen` is a plain object the dispenser runtime calls on the main thread:
``render(view, now)`` draws a :class:`~kiosk_ui.dispenser_model.DispenserView` once a
frame, and ``hit_event(event)`` (or ``hit(pos)``) turns a touch or a click into the name of
the button under it, which the runtime hands to ``on_press`` exactly as a gpiozero button
would. The screen decides nothing about tickets: a press on it is a press, and what became
of it comes back as the view's ``outcome``. One frame shows

- a title asking to choose a service;
- a banner with the last press's outcome for ``banner_seconds`` ("Your number: A042",
  "The printer is not ready"), or "please wait, printing" while a ticket is being issued;
- the service buttons, each with its name and, when the board tells them, how many wait
  and about how long; a priority button says so;
- while a printer fault stops tickets (:data:`BLOCKING_FAULTS`), an out-of-order panel
  naming it over greyed-out buttons that take no touches;
- a footer line for printer troubles that do not stop tickets (paper running low).

Words come only from kiosk_ui/words.py: an outcome's words are ``dispenser.<code>``, a
fault's are its code, a central refusal's reason ``dispenser.<central code>`` when there are
words for it. The same code lays the screen out portrait (1080x1920), landscape (1920x1080)
or small (800x480): the buttons form the grid whose cells come closest to a wide button.
As on the display board (kiosk_ui/board.py), words go through a
:class:`~kiosk_ui.text.TextPainter`: set in the shipped DejaVu fonts, rendered once and kept;
what was drawn where is kept in ``last_layout`` for tests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pygame

from entrada.codes import Fault, TicketOutcome
from entrada.errors import EntradaError
from kiosk_ui.dispenser_model import DispenserView, LastOutcome, ServiceButton
from kiosk_ui.text import FONTS_DIR, Color, DrawnText, TextPainter
from kiosk_ui.words import Words

logger = logging.getLogger(__name__)

PORTRAIT = (1080, 1920)
LANDSCAPE = (1920, 1080)
SMALL = (800, 480)

#: Printer faults that stop tickets: the buttons are greyed out while one is present.
BLOCKING_FAULTS: tuple[str, ...] = (
    Fault.PRINTER_MISSING,
    Fault.PRINTER_OFFLINE,
    Fault.PRINTER_PAPER_OUT,
    Fault.PRINTER_COVER_OPEN,
)
#: Printer troubles shown in the footer: tickets still print.
NOTICE_FAULTS: tuple[str, ...] = (Fault.PRINTER_PAPER_LOW, Fault.PRINTER_FAILED)

#: The second line under an outcome, when it has one.
OUTCOME_HINTS: dict[str, str] = {
    TicketOutcome.ISSUED: "dispenser.take_ticket",
    TicketOutcome.ISSUED_OFFLINE: "dispenser.take_ticket",
    TicketOutcome.PRINTER_NOT_READY: "dispenser.ask_staff",
    TicketOutcome.PRINT_FAILED: "dispenser.try_again",
    TicketOutcome.NO_NUMBERS: "dispenser.ask_staff",
    TicketOutcome.REFUSED: "dispenser.ask_staff",
}
ISSUED = frozenset({TicketOutcome.ISSUED, TicketOutcome.ISSUED_OFFLINE})

BACKGROUND: Color = (12, 27, 51)
HEADER_BG: Color = (20, 52, 94)
PANEL_BG: Color = (17, 38, 69)
TEXT: Color = (245, 247, 250)
MUTED: Color = (160, 180, 205)
BUTTON_BG: Color = (33, 98, 178)
DISABLED_BG: Color = (64, 70, 80)
DISABLED_TEXT: Color = (140, 146, 156)
ISSUED_BG: Color = (26, 128, 74)
REFUSED_BG: Color = (178, 92, 14)
BUSY_BG: Color = (27, 56, 99)
OVERLAY_BG: Color = (128, 26, 32)

#: The width/height the button grid aims at for each button.
BUTTON_ASPECT = 2.6
#: A button's height at most, as a share of its width (one service is not a wall).
MAX_BUTTON_HEIGHT = 0.6
#: What an empty place in the grid costs against a button's shape (a full grid looks
#: tidier than a slightly better shape).
EMPTY_CELL = 0.1


class ScreenError(EntradaError):
    """The dispenser's screen cannot draw: a font is missing, or no button is given."""


class DispenserScreen:
    """Draws :class:`DispenserView` frames for one screen size and maps touches to buttons
    (main thread only)."""

    def __init__(
        self,
        size: tuple[int, int] = PORTRAIT,
        words: Words | None = None,
        services: Sequence[ServiceButton] = (),
        *,
        fonts_dir: str | Path = FONTS_DIR,
        banner_seconds: float = 6.0,
        text_cache_size: int = 256,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.words = words or Words()
        self.services = tuple(services)
        if not self.services:
            raise ScreenError("a dispenser screen needs at least one service button")
        names = [s.button for s in self.services]
        if len(set(names)) != len(names):
            raise ScreenError(f"service buttons named twice: {sorted(names)}")
        #: How long an outcome stays in the banner, s.
        self.banner_seconds = banner_seconds
        self._painter = TextPainter(
            fonts_dir, text_cache_size, fg=TEXT, bg=PANEL_BG, error=ScreenError, owner="screen"
        )
        #: What the last frame drew: every text and its rectangle, in drawing order.
        self.last_layout: list[DrawnText] = self._painter.new_frame()
        #: Screen areas by name: header, banner, buttons, footer.
        self.regions = _layout(self.size)
        #: Each button's rectangle on screen, by button name.
        self.button_rects: dict[str, pygame.Rect] = dict(
            zip(names, _grid(self.regions["buttons"], len(names), self._pad), strict=True)
        )
        #: Whether the last frame showed the buttons pressable (touches answer to it).
        self.pressable = False
        #: Where the last frame drew the out-of-order panel (None: it did not).
        self.overlay: pygame.Rect | None = None
        self._frame = pygame.Surface(self.size)
        self._backgrounds: dict[bool, pygame.Surface] = {}

    # ------------------------------------------------------------------ public

    def render(
        self, view: DispenserView, now: float, target: pygame.Surface | None = None
    ) -> pygame.Surface:
        """Draw ``view`` as it looks at ``now`` (monotonic seconds, the clock of the
        outcome's ``at``) and return the frame: ``target`` (e.g. the display surface, of this
        screen's size) or the screen's own surface, reused from frame to frame."""
        surface = target if target is not None else self._frame
        if surface.get_size() != self.size:
            raise ValueError(f"target is {surface.get_size()}, screen draws {self.size}")
        self.last_layout = self._painter.new_frame()
        blocking = self.blocking_faults(view)
        self.pressable = not blocking
        self.overlay = self._out_of_order_panel(len(blocking)) if blocking else None
        surface.blit(self._background(self.pressable), (0, 0))
        self._draw_header(surface, view)
        self._draw_banner(surface, view, now)
        self._draw_buttons(surface, view, hidden=self.overlay)
        if self.overlay is not None:
            self._draw_out_of_order(surface, view, blocking, self.overlay)
        self._draw_footer(surface, view)
        return surface

    def hit(self, pos: tuple[int, int]) -> str | None:
        """The name of the button at ``pos`` as the last frame showed it; None outside the
        buttons, while they are greyed out, or before the first frame."""
        if not self.pressable:
            return None
        x, y = int(pos[0]), int(pos[1])
        for name, rect in self.button_rects.items():
            if rect.collidepoint(x, y):
                return name
        return None

    def hit_event(self, event: pygame.event.Event) -> str | None:
        """The button a pygame event presses: a left click (``MOUSEBUTTONDOWN``) or a touch
        (``FINGERDOWN``, whose position is a share of the window). The click SDL makes up
        from a touch is left out, so a touch presses once."""
        if event.type == pygame.MOUSEBUTTONDOWN:
            if getattr(event, "touch", False) or getattr(event, "button", 1) != 1:
                return None
            return self.hit(event.pos)
        if event.type == pygame.FINGERDOWN:
            width, height = self.size
            x = min(width - 1, int(event.x * width))
            y = min(height - 1, int(event.y * height))
            return self.hit((x, y))
        return None

    def blocking_faults(self, view: DispenserView) -> list[str]:
        """The faults in ``view`` that stop tickets, in a fixed order."""
        return [fault for fault in BLOCKING_FAULTS if fault in view.faults]

    def missing_glyphs(self, text: str, bold: bool = False) -> str:
        """The characters of ``text`` the screen's font has no glyph for ("" when all)."""
        return self._painter.missing_glyphs(text, bold)

    @property
    def cached_texts(self) -> int:
        """How many rendered texts are kept for the next frames."""
        return self._painter.cached

    # ------------------------------------------------------------------ areas

    def _draw_header(self, surface: pygame.Surface, view: DispenserView) -> None:
        box = _inset(self.regions["header"], self._pad)
        title = self._w("dispenser.choose", view.language)
        self._painter.put(
            surface, title, box, int(box.h * 0.6), bold=True, bg=HEADER_BG, align="center"
        )

    def _draw_banner(self, surface: pygame.Surface, view: DispenserView, now: float) -> None:
        lines = self._banner_lines(view, now)
        if lines is None:
            return
        main, hint, bg = lines
        band = _inset(self.regions["banner"], self._pad // 2)
        surface.fill(bg, band)
        box = _inset(band, self._pad)
        if hint:
            main_box = pygame.Rect(box.x, box.y, box.w, box.h * 60 // 100)
            hint_box = pygame.Rect(box.x, main_box.bottom, box.w, box.bottom - main_box.bottom)
            self._painter.put(surface, hint, hint_box, int(hint_box.h * 0.6), bg=bg, align="center")
        else:
            main_box = box
        size = int(min(main_box.h * 0.75, box.h * 0.45))
        self._painter.put(
            surface, main, main_box, size, bold=True, bg=bg, align="center", cut=False
        )

    def _banner_lines(self, view: DispenserView, now: float) -> tuple[str, str, Color] | None:
        """The banner's main line, its second line ("" for none) and colour, or None."""
        lang = view.language
        if view.busy:
            return self._w("dispenser.printing", lang), "", BUSY_BG
        outcome = view.outcome
        if outcome is None or now - outcome.at >= self.banner_seconds:
            return None
        hint_key = OUTCOME_HINTS.get(outcome.code)
        hint = self._w(hint_key, lang) if hint_key else ""
        if outcome.code in ISSUED:
            number = str(outcome.detail.get("number", ""))
            return self._w(f"dispenser.{outcome.code}", lang, number=number), hint, ISSUED_BG
        if outcome.code == TicketOutcome.BUSY:
            return self._w(f"dispenser.{outcome.code}", lang), hint, BUSY_BG
        return self._refusal(outcome, view), hint, REFUSED_BG

    def _refusal(self, outcome: LastOutcome, view: DispenserView) -> str:
        """Why no ticket came, as precisely as known: the printer's fault, central's reason
        when there are words for it, or the outcome's own words."""
        lang = view.language
        if outcome.code == TicketOutcome.PRINTER_NOT_READY:
            blocking = self.blocking_faults(view)
            if blocking:
                return self._w(blocking[0], lang)
        if outcome.code == TicketOutcome.REFUSED and outcome.detail.get("code"):
            key = f"dispenser.{outcome.detail['code']}"
            reason = self._w(key, lang)
            if reason != key:
                return reason
        return self._w(f"dispenser.{outcome.code}", lang)

    def _draw_buttons(
        self, surface: pygame.Surface, view: DispenserView, hidden: pygame.Rect | None
    ) -> None:
        """Each button's name and the words under it, but for those under ``hidden``."""
        lang = view.language
        bg = BUTTON_BG if self.pressable else DISABLED_BG
        fg = TEXT if self.pressable else DISABLED_TEXT
        for service in self.services:
            rect = self.button_rects[service.button]
            if hidden is not None and hidden.colliderect(rect):
                continue
            inner = _inset(rect, self._pad)
            name = view.names.get(service.service) or service.name
            info = self._button_info(service, view, lang)
            name_box = inner
            if info:
                name_box = pygame.Rect(inner.x, inner.y, inner.w, inner.h * 58 // 100)
                info_box = pygame.Rect(inner.x, name_box.bottom, inner.w, inner.h - name_box.h)
                size = int(info_box.h * 0.6)
                text = " · ".join(info)
                self._painter.put(
                    surface, text, info_box, size, fg=fg, bg=bg, align="center", cut=False
                )
            size = int(min(name_box.h * 0.7, inner.h * 0.42))
            self._painter.put(
                surface, name, name_box, size, bold=True, fg=fg, bg=bg, align="center"
            )

    def _button_info(self, service: ServiceButton, view: DispenserView, lang: str) -> list[str]:
        """The small words under a button's name: priority, waiting count, wait."""
        info = []
        if service.priority:
            info.append(self._w("dispenser.priority", lang))
        line = view.services.get(service.service)
        if line is not None:
            waiting, est_wait_s = line
            info.append(self._w("board.waiting", lang, count=waiting))
            if est_wait_s is not None:
                if est_wait_s < 60:
                    info.append(self._w("board.wait_under_minute", lang))
                else:
                    minutes = round(est_wait_s / 60)
                    info.append(self._w("board.wait_minutes", lang, minutes=minutes))
        return info

    def _out_of_order_panel(self, faults: int) -> pygame.Rect:
        """Where the out-of-order panel goes: across the buttons' grid, in the middle,
        covering whole buttons (none shows half its words)."""
        area = self.regions["buttons"]
        rects = list(self.button_rects.values())
        grid = rects[0].unionall(rects[1:])
        row_h = min(area.h * 80 // 100 // (faults + 3), max(self.size) // 16)
        panel = pygame.Rect(grid.x, 0, grid.w, row_h * (faults + 3) + 2 * self._pad)
        panel.centery = area.centery
        covered = [r for r in self.button_rects.values() if r.colliderect(panel)]
        top = min([panel.top, *(r.top for r in covered)])
        bottom = max([panel.bottom, *(r.bottom for r in covered)])
        return pygame.Rect(grid.x, top, grid.w, bottom - top)

    def _draw_out_of_order(
        self, surface: pygame.Surface, view: DispenserView, faults: list[str], panel: pygame.Rect
    ) -> None:
        """ "Out of order" (twice as high as a line), each fault, and "ask staff"."""
        lang = view.language
        lines = [self._w(fault, lang) for fault in faults]
        lines.append(self._w("dispenser.ask_staff", lang))
        surface.fill(OVERLAY_BG, panel)
        box = _inset(panel, self._pad)
        row_h = min(box.h // (len(lines) + 2), max(self.size) // 16)
        top = box.y + (box.h - row_h * (len(lines) + 2)) // 2
        title = pygame.Rect(box.x, top, box.w, 2 * row_h)
        heading = self._w("dispenser.out_of_order", lang)
        size = int(title.h * 0.7)
        self._painter.put(
            surface, heading, title, size, bold=True, bg=OVERLAY_BG, align="center", cut=False
        )
        for i, text in enumerate(lines):
            row = pygame.Rect(box.x, title.bottom + i * row_h, box.w, row_h)
            size = int(row_h * 0.7)
            self._painter.put(surface, text, row, size, bg=OVERLAY_BG, align="center", cut=False)

    def _draw_footer(self, surface: pygame.Surface, view: DispenserView) -> None:
        notices = [self._w(f, view.language) for f in NOTICE_FAULTS if f in view.faults]
        if not notices:
            return
        box = _inset(self.regions["footer"], self._pad // 2)
        text = " · ".join(notices)
        self._painter.put(
            surface, text, box, int(box.h * 0.6), fg=MUTED, bg=BACKGROUND, align="center"
        )

    # ------------------------------------------------------------------ helpers

    @property
    def _pad(self) -> int:
        return max(4, min(self.size) // 60)

    def _w(self, key: str, language: str, **params: object) -> str:
        return self.words.get(key, language, **params)

    def _background(self, pressable: bool) -> pygame.Surface:
        """The panels and the buttons' faces, drawn once for each state."""
        background = self._backgrounds.get(pressable)
        if background is None:
            background = pygame.Surface(self.size)
            background.fill(BACKGROUND)
            background.fill(HEADER_BG, self.regions["header"])
            background.fill(PANEL_BG, _inset(self.regions["banner"], self._pad // 2))
            face = BUTTON_BG if pressable else DISABLED_BG
            for rect in self.button_rects.values():
                background.fill(face, rect)
            if pygame.display.get_surface() is not None:
                background = background.convert()
            self._backgrounds[pressable] = background
        return background


def _layout(size: tuple[int, int]) -> dict[str, pygame.Rect]:
    """The screen's areas, top to bottom: title, banner, buttons, footer."""
    width, height = size
    portrait = height > width
    header_h = round(height * (0.08 if portrait else 0.12))
    banner_h = round(height * (0.2 if portrait else 0.22))
    footer_h = round(height * (0.05 if portrait else 0.07))
    buttons_y = header_h + banner_h
    return {
        "header": pygame.Rect(0, 0, width, header_h),
        "banner": pygame.Rect(0, header_h, width, banner_h),
        "buttons": pygame.Rect(0, buttons_y, width, height - buttons_y - footer_h),
        "footer": pygame.Rect(0, height - footer_h, width, footer_h),
    }


def _grid(area: pygame.Rect, count: int, gap: int) -> list[pygame.Rect]:
    """``count`` button rectangles in ``area``, row by row: the number of columns whose
    cells come closest to :data:`BUTTON_ASPECT`. A button is never taller than
    :data:`MAX_BUTTON_HEIGHT` of its width; the grid, and a short last row, are centred."""
    box = _inset(area, gap)
    best: tuple[float, int] | None = None
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        cell_w = (box.w - gap * (cols - 1)) / cols
        cell_h = min((box.h - gap * (rows - 1)) / rows, cell_w * MAX_BUTTON_HEIGHT)
        if cell_w <= 0 or cell_h <= 0:
            continue
        score = abs(math.log(cell_w / cell_h / BUTTON_ASPECT)) + EMPTY_CELL * (cols * rows - count)
        if best is None or score < best[0]:
            best = (score, cols)
    cols = best[1] if best is not None else 1
    rows = math.ceil(count / cols)
    cell_w = (box.w - gap * (cols - 1)) // cols
    cell_h = min((box.h - gap * (rows - 1)) // rows, int(cell_w * MAX_BUTTON_HEIGHT))
    top = box.y + (box.h - (cell_h * rows + gap * (rows - 1))) // 2
    rects = []
    for i in range(count):
        row, col = divmod(i, cols)
        in_row = min(cols, count - row * cols)
        left = box.x + (box.w - (cell_w * in_row + gap * (in_row - 1))) // 2
        rects.append(
            pygame.Rect(left + col * (cell_w + gap), top + row * (cell_h + gap), cell_w, cell_h)
        )
    return rects


def _inset(rect: pygame.Rect, by: int) -> pygame.Rect:
    return rect.inflate(-2 * by, -2 * by)
