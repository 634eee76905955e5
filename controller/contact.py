"""Is the gate in contact with central, and if not, since when?

A tariff's offline policy applies after a number of minutes without central, so the gate
must know how long it has been alone. Contact means both: the broker link is up and
central's retained ``central/status`` says ``online``. A status from an older connection
of central (a late will) never overrides a newer one. A gate that has just started has
had no contact yet. Owned by the runtime's owner thread; times passed in.
"""

from __future__ import annotations

import logging

from entrada.protocol import CentralStatus

logger = logging.getLogger(__name__)


class CentralContact:
    def __init__(self, now: float) -> None:
        #: Wall time contact was lost (None: in contact now).
        self.lost_at: float | None = now
        self._link_up = False
        self._central_online = False
        self._central_epoch = 0

    def link(self, up: bool, now: float) -> None:
        """The broker link went up or down."""
        self._link_up = up
        if not up:
            self._central_online = False  # until a fresh retained status says otherwise
        self._update(now)

    def status(self, status: CentralStatus, now: float) -> None:
        """Central's retained status arrived."""
        if status.epoch < self._central_epoch:
            return  # a late will of an older connection: the newer birth stands
        self._central_epoch = status.epoch
        self._central_online = status.state == "online"
        self._update(now)

    def minutes_offline(self, now: float) -> float | None:
        """How long without central (None: in contact now)."""
        if self.lost_at is None:
            return None
        return max(now - self.lost_at, 0.0) / 60.0

    def _update(self, now: float) -> None:
        in_contact = self._link_up and self._central_online
        if in_contact and self.lost_at is not None:
            logger.info(
                "in contact with central again after %.1f min", self.minutes_offline(now) or 0.0
            )
            self.lost_at = None
        elif not in_contact and self.lost_at is None:
            logger.warning("lost contact with central; offline policies apply from now")
            self.lost_at = now
