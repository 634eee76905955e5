"""The display board's announcer: a first-in first-out queue of chimes and spoken calls.

``announce()`` queues a call; the board's main loop calls ``pump(now)`` every frame and the
announcer starts the next clip whenever the sound output is no longer busy. Nothing sleeps
and no thread waits for a clip to end, so the frame keeps drawing while the board speaks.
An announcement is the chime then the spoken pieces ("A zero four two, counter three", see
kiosk_ui/words.py); announcements never cut each other off, and a short gap separates two.

When an announcement has played to its end, ``on_done(call_id)`` is called (from
``pump``), so the display can confirm the call was shown and announced. It is called in
every case, once per announcement: a missing clip is skipped (logged once per file) and
the rest still plays; a sound device that fails ends the announcement at once and
``healthy`` turns False, which the display reports as ``fault.sound_down``. Each later
announcement tries the device again, and ``healthy`` turns True when one plays.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivers.sound import ClipError, SoundOutput
from entrada.errors import DriverError
from kiosk_ui.voice_clips import clip_path
from kiosk_ui.words import CHIME, announcement_pieces

logger = logging.getLogger(__name__)

#: Silence between two announcements, in seconds.
GAP_SECONDS = 0.6
#: A clip still "playing" after this long means the device hangs; the longest clip is
#: the chime, under 2 s.
MAX_CLIP_SECONDS = 10.0


@dataclass
class _Announcement:
    call_id: str
    clips: deque[Path]
    #: When the clip sounding now started (pump's clock), None between clips.
    playing_since: float | None = None
    played: list[Path] = field(default_factory=list)


class Announcer:
    """Plays queued announcements one after another through ``sound`` (main thread only)."""

    def __init__(
        self,
        sound: SoundOutput,
        clips_dir: str | Path,
        language: str,
        on_done: Callable[[str], None],
        *,
        gap_s: float = GAP_SECONDS,
        max_clip_s: float = MAX_CLIP_SECONDS,
    ) -> None:
        self.sound = sound
        self.clips_dir = Path(clips_dir)
        #: Language of announcements queued from now on without one of their own.
        self.language = language
        self.on_done = on_done
        self.gap_s = gap_s
        self.max_clip_s = max_clip_s
        self._queue: deque[_Announcement] = deque()
        self._current: _Announcement | None = None
        self._next_start = float("-inf")
        self._healthy = True
        self._missing: set[Path] = set()

    @property
    def healthy(self) -> bool:
        """False since the sound device last failed, until a clip plays again."""
        return self._healthy

    @property
    def pending(self) -> int:
        """Announcements queued or playing."""
        return len(self._queue) + (self._current is not None)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing playing."""
        return self.pending == 0

    def announce(
        self, call_id: str, ticket: str, counter_label: str, language: str | None = None
    ) -> None:
        """Queue "chime, <ticket>, counter <counter_label>" behind what is already queued."""
        lang = language or self.language
        pieces = announcement_pieces(lang, ticket, counter_label)
        clips = deque(clip_path(self.clips_dir, lang, piece) for piece in [CHIME, *pieces])
        self._queue.append(_Announcement(call_id, clips))
        logger.debug("queued announcement of %s (%s at %s)", call_id, ticket, counter_label)

    def pump(self, now: float) -> None:
        """Start the next clip if the last one has ended; report finished announcements.

        Call every frame with a monotonic ``now``. Returns at once."""
        while True:
            current = self._current
            if current is None:
                if not self._queue or now < self._next_start:
                    return
                current = self._current = self._queue.popleft()
            if current.playing_since is not None:
                try:
                    busy = self.sound.busy()
                except DriverError as err:
                    self._fail(current, now, err)
                    continue
                if busy:
                    if now - current.playing_since > self.max_clip_s:
                        self._stop_quietly()
                        self._fail(current, now, DriverError("a clip never ended"))
                        continue
                    return
                current.playing_since = None
            if not current.clips:
                self._finish(current, now)
                continue
            if self._start(current, current.clips.popleft(), now):
                return

    def _start(self, current: _Announcement, clip: Path, now: float) -> bool:
        """Play ``clip``; True if it sounds now (False: skipped or the announcement failed)."""
        if not clip.is_file():
            self._skip(clip, "is missing")
            return False
        try:
            self.sound.play(clip)
        except ClipError as err:
            self._skip(clip, f"cannot be played ({err})")
            return False
        except DriverError as err:
            self._fail(current, now, err)
            return False
        current.playing_since = now
        current.played.append(clip)
        if not self._healthy:
            self._healthy = True
            logger.info("sound is back: announcements play again")
        return True

    def _skip(self, clip: Path, why: str) -> None:
        if clip not in self._missing:
            self._missing.add(clip)
            logger.warning("announcement clip %s %s; it is left out", clip, why)

    def _fail(self, current: _Announcement, now: float, err: DriverError) -> None:
        """The device failed: end this announcement now (it was shown; it is reported done)."""
        if self._healthy:
            self._healthy = False
            logger.error("sound device failed, announcements are silent: %s", err)
        current.clips.clear()
        current.playing_since = None
        self._finish(current, now)

    def _finish(self, current: _Announcement, now: float) -> None:
        self._current = None
        self._next_start = now + self.gap_s
        logger.debug("announced %s (%d clips)", current.call_id, len(current.played))
        self.on_done(current.call_id)

    def _stop_quietly(self) -> None:
        try:
            self.sound.stop()
        except DriverError:
            logger.debug("stopping a hung clip failed too", exc_info=True)
