"""What a gate's outputs can do: the turnstile relay and the LED/buzzer indicator.

Both are fire-and-forget from the owner thread: a pulse is timed by the driver (gpiozero's
background blink), never by sleeping in the caller. Relays start and end de-energised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class Relay(Protocol):
    def pulse(self, seconds: float) -> None:
        """Energise for ``seconds`` then release, without blocking the caller."""

    def release(self) -> None:
        """De-energise now (start, stop, fault)."""

    def close(self) -> None:
        """Release and free the pin; safe to call twice."""


@runtime_checkable
class Indicator(Protocol):
    def signal(self, outcome: str, detail: Mapping[str, object] | None = None) -> None:
        """Show an outcome code (green light and short beep, red and long beep, ...).

        ``detail`` is the explanation behind it (a template ``key`` and its ``params``,
        e.g. the amount owed at an exit) for an indicator that has a screen."""

    def close(self) -> None: ...
