"""The central service's owner-thread plumbing: what one drained pass holds, calls handed
to the owner thread, systemd notifications and connect epochs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sdnotify import SystemdNotifier

from central.ingest import DecodedBatch
from entrada.mqtt import Incoming
from entrada.protocol import Status

logger = logging.getLogger(__name__)


@dataclass
class Work:
    """One drained batch of the inbox, decoded."""

    events: list[DecodedBatch] = field(default_factory=list)
    statuses: list[tuple[Status, bool]] = field(default_factory=list)
    catalog_requests: list[tuple[str, bytes]] = field(default_factory=list)
    queue: list[Incoming] = field(default_factory=list)
    n_events: int = 0


@dataclass(frozen=True)
class OwnerCall:
    fn: Callable[[], Any]
    done: Future[Any]

    def run(self) -> None:
        if not self.done.set_running_or_notify_cancel():
            return
        try:
            self.done.set_result(self.fn())
        except Exception as err:  # noqa: BLE001 - handed to the caller, who raises it
            self.done.set_exception(err)


class Systemd:
    """READY/WATCHDOG/STOPPING notifications; silent when not run by systemd."""

    def __init__(self) -> None:
        self._notifier = SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        self.watchdog: float | None = None
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if self._notifier and usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid())):
            self.watchdog = int(usec) / 2_000_000  # pet twice per period
        self._next_pet = 0.0

    def notify(self, state: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(state)

    def pet(self, mono: float) -> None:
        if self.watchdog is not None and mono >= self._next_pet:
            self.notify("WATCHDOG=1")
            self._next_pet = mono + self.watchdog

    def close(self) -> None:
        sock = getattr(self._notifier, "socket", None)
        if sock is not None:
            sock.close()


def epochs(clock: Callable[[], float]) -> Callable[[], int]:
    """Connect epochs that keep growing across restarts (at least the Unix time)."""
    last = 0

    def next_epoch() -> int:
        nonlocal last
        last = max(last + 1, int(clock()))
        return last

    return next_epoch
