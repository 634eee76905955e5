"""A simulated credential reader: taps come from ``inject`` (the simulator channel, tests).

It is an instrument, not a stand-in that hides problems: it records every UID it delivered
(``reads``) and every UID it dropped (``dropped``), and it fails on purpose. Setting
``offline = True`` makes it drop taps and report ``on_health(False, "simulated offline")``
once; setting it back reports ``on_health(True, "")`` once. ``double_read = True`` delivers
each UID twice, as a real reader does when a card lingers, to exercise the application's
debounce.
"""

from __future__ import annotations

import logging
import re
import threading

from drivers.rfid import HealthCallback, UidCallback
from entrada.errors import DriverError

logger = logging.getLogger(__name__)

#: ISO 14443 UIDs are 4, 7 or 10 bytes.
UID_BYTES = (4, 7, 10)
_SEPARATORS = re.compile(r"[\s:\-]")
_HEX = re.compile(r"[0-9A-F]+")
OFFLINE_REASON = "simulated offline"


def normalise_uid(uid: str) -> str:
    """``"04:a1:b2:c3"`` or ``"04a1b2c3"`` -> ``"04A1B2C3"``; ValueError if not a UID."""
    text = _SEPARATORS.sub("", uid).upper()
    if not _HEX.fullmatch(text) or len(text) // 2 not in UID_BYTES or len(text) % 2:
        raise ValueError(f"not a 4, 7 or 10 byte hex UID: {uid!r}")
    return text


class SimRfidReader:
    """RfidReader whose taps are injected; see the module docstring."""

    def __init__(self, name: str = "sim") -> None:
        self.name = name
        self.reads: list[str] = []
        self.dropped: list[str] = []
        self.double_read = False
        self._offline = False
        self._lock = threading.Lock()
        self._on_uid: UidCallback | None = None
        self._on_health: HealthCallback | None = None

    def start(self, on_uid: UidCallback, on_health: HealthCallback) -> None:
        with self._lock:
            if self._on_uid is not None:
                raise DriverError(f"simulated reader {self.name!r} is already started")
            self._on_uid, self._on_health = on_uid, on_health
            offline = self._offline
        logger.info("simulated reader %r started", self.name)
        if offline:
            on_health(False, OFFLINE_REASON)

    def stop(self) -> None:
        with self._lock:
            self._on_uid = self._on_health = None

    @property
    def offline(self) -> bool:
        return self._offline

    @offline.setter
    def offline(self, value: bool) -> None:
        with self._lock:
            changed = self._offline != bool(value)
            self._offline = bool(value)
            on_health = self._on_health
        if changed:
            logger.info("simulated reader %r %s", self.name, "offline" if value else "online")
            if on_health is not None:
                on_health(not value, OFFLINE_REASON if value else "")

    def inject(self, uid: str) -> None:
        """A card tapped the reader (from any thread). ValueError if ``uid`` is not a UID."""
        text = normalise_uid(uid)
        with self._lock:
            on_uid = self._on_uid
            if on_uid is None:
                raise DriverError(f"simulated reader {self.name!r} is not started")
            if self._offline:
                self.dropped.append(text)
                return
            times = 2 if self.double_read else 1
            self.reads.extend([text] * times)
        for _ in range(times):
            on_uid(text)
