"""What a display board's sound output can do: play one clip at a time, and say when it ends.

The announcer (kiosk_ui/announcer.py) owns the order of clips; the output only plays the
clip it is handed and answers :meth:`SoundOutput.busy` while it sounds. Both calls return at
once, from the pygame main thread: nothing sleeps until a clip ends, the announcer asks
again next frame. A device that cannot play raises DriverError (the board then reports
``fault.sound_down``); a clip file that is missing or unreadable raises :class:`ClipError`,
a DriverError too, so a caller that only cares whether sound works can catch one type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from entrada.errors import DriverError


class ClipError(DriverError):
    """One clip cannot be played (file missing, not a WAV); the device itself is fine."""


@runtime_checkable
class SoundOutput(Protocol):
    def play(self, clip_path: Path) -> None:
        """Start playing ``clip_path`` and return at once.

        Raises ClipError for a bad clip, DriverError when the device fails."""

    def busy(self) -> bool:
        """True while a clip is sounding. Raises DriverError when the device fails."""

    def stop(self) -> None:
        """Silence whatever plays now."""

    def close(self) -> None:
        """Stop and release the device; safe to call twice."""
