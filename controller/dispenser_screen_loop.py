"""The dispenser's touch screen (``dispenser.screen = "touch"``): its window, its frames
and its touches, on the main thread.

:class:`~controller.dispenser_runtime.DispenserRuntime` runs it the way the display board
runs its screen (controller/display_runtime.py): pygame owns the main thread, and each
pass of the runtime's ``step()`` takes the window's events, serves the inbox until the
next pass is due (at most ``dispenser.fps`` passes a second) and draws a frame when what
the screen shows changed. A touch (``FINGERDOWN``) or a left click on a service button
becomes ``runtime.on_press(name)``, the path a gpiozero button takes, and is served in the
same pass, so the screen and the push buttons are one input to the runtime; the screen's
buttons are the entries of ``dispenser.buttons``, in their order.

What a frame shows is a :class:`~kiosk_ui.dispenser_model.DispenserView` made by
:func:`dispenser_view` from the runtime's state: the board's waiting counts, waits and
service names, the last press's outcome, the device's faults (the printer's grey the
buttons out) and whether a ticket is on its way. A frame is drawn only when that view, the
banner's visibility or the identify blink changed, and at least every :data:`REFRESH`
seconds: a Pi does not redraw a still screen twenty times a second.

pygame is imported only when the screen opens: a dispenser without one never imports it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from controller.settings_queue import DispenserSection
from entrada.errors import DriverError
from entrada.protocol_queue import QueueBoard
from kiosk_ui.dispenser_model import DispenserView, LastOutcome, ServiceButton

logger = logging.getLogger(__name__)

#: A frame is drawn at least this often even when nothing on it changed (a window that was
#: covered gets its picture back), s.
REFRESH = 1.0
IDENTIFY_BG = (255, 200, 0)
IDENTIFY_FG = (0, 0, 0)


def service_buttons(section: DispenserSection) -> list[ServiceButton]:
    """One screen button per entry of ``dispenser.buttons``, in its order; a button shows
    its service's id until the board tells the service's name."""
    return [
        ServiceButton(button, service, service, button in section.priority_buttons)
        for button, service in section.buttons.items()
    ]


def dispenser_view(
    board: QueueBoard | None,
    outcome: LastOutcome | None,
    faults: Iterable[str],
    busy: bool,
    language: str,
) -> DispenserView:
    """What the screen shows, from what the runtime knows (pure)."""
    services: dict[str, tuple[int, int | None]] = {}
    names: dict[str, str] = {}
    for line in board.services if board is not None else ():
        services[line.service] = (line.waiting, line.est_wait_s)
        names[line.service] = line.name
    return DispenserView(
        services=MappingProxyType(services),
        names=MappingProxyType(names),
        outcome=outcome,
        faults=frozenset(faults),
        busy=busy,
        language=language,
    )


class ScreenLoop:
    """The dispenser's window: :meth:`open` it, then each pass :meth:`poll` its touches,
    wait up to :meth:`wait` on the inbox and offer the :meth:`frame` (main thread only)."""

    def __init__(self, section: DispenserSection, device_id: str) -> None:
        self.section = section
        self.device_id = device_id
        #: The last press's outcome, as the runtime reported it (:meth:`note_outcome`).
        self.outcome: LastOutcome | None = None
        #: Frames drawn.
        self.frames = 0
        #: The :class:`~kiosk_ui.dispenser_screen.DispenserScreen` (its ``last_layout``
        #: tells what the last frame drew); None until :meth:`open`.
        self.screen: Any = None
        self._surface: Any = None
        self._drawn: tuple[object, ...] | None = None
        self._next_pass = 0.0
        self._next_refresh = 0.0
        self._identify_until = float("-inf")

    @property
    def is_open(self) -> bool:
        return self._surface is not None

    def open(self) -> None:
        """pygame, the window and the screen's drawing (main thread, at start). A screen
        that does not open raises DriverError."""
        section = self.section
        if section.video_driver:
            os.environ["SDL_VIDEODRIVER"] = section.video_driver
        import pygame

        from kiosk_ui.dispenser_screen import (
            LANDSCAPE,
            PORTRAIT,
            SMALL,
            DispenserScreen,
            ScreenError,
        )
        from kiosk_ui.words import Words

        size = {"portrait": PORTRAIT, "landscape": LANDSCAPE, "small": SMALL}[section.orientation]
        try:
            pygame.display.init()
            flags = pygame.FULLSCREEN if section.fullscreen else 0
            self._surface = pygame.display.set_mode(size, flags)
            pygame.display.set_caption(f"Entrada dispenser {self.device_id}")
            if section.fullscreen:
                pygame.mouse.set_visible(False)  # a touch kiosk shows no pointer
            self.screen = DispenserScreen(size, Words(section.language), service_buttons(section))
        except (pygame.error, ScreenError) as err:
            raise DriverError(f"the dispenser's screen did not open: {err}") from err
        logger.info("touch screen open: %dx%d, %s", *size, pygame.display.get_driver())

    def close(self) -> None:
        if self._surface is not None:
            import pygame

            pygame.display.quit()
            self._surface = None

    # ------------------------------------------------------------------ passes

    def poll(self) -> tuple[list[str], bool]:
        """The buttons touched since the last pass, in order, and whether the window was
        closed."""
        import pygame

        pressed: list[str] = []
        closed = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                closed = True
            elif event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
                self._drawn = None  # drawn again in this pass
            else:
                name = self.screen.hit_event(event)
                if name is not None:
                    pressed.append(name)
        return pressed, closed

    def wait(self, now: float) -> float:
        """How long the inbox may be waited on before the next pass is due."""
        if now >= self._next_pass:
            self._next_pass = now + 1.0 / self.section.fps
        return max(0.0, self._next_pass - now)

    def frame(self, view: DispenserView, now: float) -> bool:
        """Draw ``view`` as it looks at ``now`` (monotonic) when that is not what the
        window shows, or a refresh is due; True when a frame was drawn."""
        blink = self._blink_on(now)
        look = (view, self._banner_on(view, now), blink)
        if look == self._drawn and now < self._next_refresh:
            return False
        import pygame

        self.screen.render(view, now, target=self._surface)
        if blink:
            self._draw_identify()
        pygame.display.flip()
        self._drawn = look
        self._next_refresh = now + REFRESH
        self.frames += 1
        return True

    # ------------------------------------------------------------------ state

    def note_outcome(self, code: str, detail: Mapping[str, Any], at: float) -> None:
        """A press's outcome (``at``: monotonic), shown in the banner from the next frame."""
        self.outcome = LastOutcome(code, MappingProxyType(dict(detail)), at)

    def identify(self, until: float) -> None:
        """Blink the device id over the screen until ``until`` (monotonic)."""
        self._identify_until = until

    def _banner_on(self, view: DispenserView, now: float) -> bool:
        outcome = view.outcome
        return outcome is not None and now - outcome.at < self.screen.banner_seconds

    def _blink_on(self, now: float) -> bool:
        return now < self._identify_until and int(now * 2) % 2 == 0

    def _draw_identify(self) -> None:
        import pygame

        width, height = self._surface.get_size()
        band = pygame.Rect(0, height * 2 // 5, width, height // 5)
        self._surface.fill(IDENTIFY_BG, band)
        font = pygame.font.Font(None, min(band.h * 2 // 3, width // max(4, len(self.device_id))))
        text = font.render(self.device_id, True, IDENTIFY_FG)
        self._surface.blit(text, text.get_rect(center=band.center))
