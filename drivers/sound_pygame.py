"""Sound through pygame.mixer: the display board's chime and announcements on HDMI or a jack.

``pygame.init()`` opens the mixer with its own defaults and later ``pre_init`` settings are
then silently ignored (HARDWARE_NOTES, "Screens and sound"). So this driver opens the mixer
itself with explicit settings (``pre_init`` then ``init``); a mixer already open with other
settings is closed and opened again, with a log line, before any clip plays. Clips go to
one reserved channel, so nothing else the process plays can take it over, and each is
loaded once and kept (a board has a few dozen short clips).

Under test, ``SDL_AUDIODRIVER=disk`` with ``SDL_DISKAUDIOFILE`` writes the PCM the mixer
really produced to a file; ``dummy`` plays to nowhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pygame

from drivers.sound import ClipError
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


class PygameSound:
    """Implements :class:`drivers.sound.SoundOutput` with pygame.mixer (main thread only)."""

    def __init__(
        self,
        *,
        frequency: int = 22050,
        size: int = -16,
        channels: int = 2,
        buffer: int = 1024,
        device: str | None = None,
    ) -> None:
        self._settings = (frequency, size, channels)
        self._sounds: dict[Path, pygame.mixer.Sound] = {}
        self.closed = False
        current = pygame.mixer.get_init()
        if current is not None and current != self._settings:
            logger.info(
                "mixer was open as %s; reopening it as %s (frequency, size, channels)",
                current,
                self._settings,
            )
            pygame.mixer.quit()
        try:
            if pygame.mixer.get_init() is None:
                pygame.mixer.pre_init(frequency, size, channels, buffer, devicename=device)
                pygame.mixer.init()
            pygame.mixer.set_reserved(1)
            self._channel = pygame.mixer.Channel(0)
        except pygame.error as err:
            raise DriverError(f"sound device {device or '(default)'} cannot open: {err}") from err
        logger.info("sound: pygame mixer %s on %s", pygame.mixer.get_init(), device or "default")

    def play(self, clip_path: Path) -> None:
        """Start ``clip_path`` on the reserved channel; returns at once."""
        self._check()
        sound = self._load(Path(clip_path))
        try:
            self._channel.play(sound)
        except pygame.error as err:
            raise DriverError(f"sound device failed: {err}") from err

    def busy(self) -> bool:
        """True while the reserved channel sounds."""
        self._check()
        try:
            return bool(self._channel.get_busy())
        except pygame.error as err:
            raise DriverError(f"sound device failed: {err}") from err

    def stop(self) -> None:
        """Silence the channel now."""
        if not self.closed and pygame.mixer.get_init() is not None:
            self._channel.stop()

    def close(self) -> None:
        """Stop, forget the loaded clips and close the mixer; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._sounds.clear()
        if pygame.mixer.get_init() is not None:
            self._channel.stop()
            pygame.mixer.quit()

    def _check(self) -> None:
        if self.closed:
            raise DriverError("sound output is closed")
        if pygame.mixer.get_init() is None:
            raise DriverError("sound device is not open (the mixer was closed under us)")

    def _load(self, clip: Path) -> pygame.mixer.Sound:
        sound = self._sounds.get(clip)
        if sound is None:
            if not clip.is_file():
                raise ClipError(f"no such clip: {clip}")
            try:
                sound = pygame.mixer.Sound(str(clip))
            except (pygame.error, OSError) as err:
                raise ClipError(f"clip {clip} cannot be read: {err}") from err
            self._sounds[clip] = sound
        return sound
