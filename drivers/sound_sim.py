"""A simulated sound output: an instrument that records every clip a board played.

``plays`` keeps each clip with the times it started and would have ended, so a test can
check the order and that no clip cut another off (``overlaps`` counts a play that started
while another still sounded, and ``stops`` each clip silenced early). A clip "sounds" for its
WAV's real length when the file is a readable WAV, else for ``default_seconds``, as told by
the ``clock`` it is given; :meth:`finish` ends the current clip at once for tests that do
not keep a clock. ``failing=True`` (flip it at any time) makes play and busy raise
DriverError, the way an unplugged USB sound card would; a missing clip file, or one named
in ``unplayable``, raises ClipError like the real output does for a bad file.
"""

from __future__ import annotations

import logging
import time
import wave
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from drivers.sound import ClipError
from entrada.errors import DriverError

logger = logging.getLogger(__name__)


@dataclass
class SimPlay:
    """One clip played: when it started and when it ended or will end (clock seconds)."""

    clip: Path
    started: float
    ends: float


class SimSound:
    """Implements :class:`drivers.sound.SoundOutput` in memory."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        default_seconds: float = 0.5,
        durations: Mapping[str, float] | None = None,
        require_files: bool = True,
        failing: bool = False,
        unplayable: Collection[str] = (),
    ) -> None:
        #: When True, :meth:`play` and :meth:`busy` raise DriverError (may be flipped).
        self.failing = failing
        #: File names that raise ClipError as an unreadable WAV would (may be changed).
        self.unplayable = set(unplayable)
        #: Every clip played, oldest first.
        self.plays: list[SimPlay] = []
        #: Plays that began while the previous clip still sounded.
        self.overlaps = 0
        #: Clips silenced by :meth:`stop` before their end.
        self.stops = 0
        self.closed = False
        self._clock = clock
        self._default = default_seconds
        self._durations = dict(durations or {})
        self._require_files = require_files

    @property
    def played(self) -> list[Path]:
        """The clips played, oldest first."""
        return [play.clip for play in self.plays]

    def play(self, clip_path: Path) -> None:
        """Record ``clip_path`` as sounding from now for its length."""
        self._check()
        clip = Path(clip_path)
        if self._require_files and not clip.is_file():
            raise ClipError(f"no such clip: {clip}")
        if clip.name in self.unplayable:
            raise ClipError(f"clip {clip} cannot be read (simulated)")
        now = self._clock()
        if self.plays and self.plays[-1].ends > now:
            self.overlaps += 1
            self.plays[-1].ends = now
        self.plays.append(SimPlay(clip, now, now + self._length(clip)))
        logger.debug("sim sound plays %s", clip)

    def busy(self) -> bool:
        """True until the last clip's end on the clock."""
        self._check()
        return bool(self.plays) and self._clock() < self.plays[-1].ends

    def finish(self) -> None:
        """End the clip sounding now, as if it had played to its end."""
        if self.plays:
            self.plays[-1].ends = min(self.plays[-1].ends, self._clock())

    def stop(self) -> None:
        """Silence the current clip, counting it in ``stops`` if it still sounded."""
        now = self._clock()
        if self.plays and self.plays[-1].ends > now:
            self.plays[-1].ends = now
            self.stops += 1

    def close(self) -> None:
        """Stop and accept no more clips; safe to call twice."""
        if not self.closed:
            self.stop()
            self.closed = True

    def _check(self) -> None:
        if self.closed:
            raise DriverError("simulated sound output is closed")
        if self.failing:
            raise DriverError("simulated sound device failed")

    def _length(self, clip: Path) -> float:
        if clip.name in self._durations:
            return self._durations[clip.name]
        try:
            with wave.open(str(clip), "rb") as wav:
                return wav.getnframes() / wav.getframerate()
        except (OSError, EOFError, wave.Error):
            return self._default
