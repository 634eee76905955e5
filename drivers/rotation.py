"""What a turnstile's rotation sensor can do: say, once per turn, that someone went through.

A grant only unlocks the turnstile; the sensor confirms the passage. The callback runs in
the driver's thread (gpiozero's, or the simulator's caller) and must only hand the event to
the owner thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: Called from the driver's thread once per accepted turn.
RotationCallback = Callable[[], None]


@runtime_checkable
class RotationSensor(Protocol):
    def start(self, on_rotation: RotationCallback) -> None:
        """Call ``on_rotation()`` for each turn from now on."""

    def close(self) -> None:
        """Stop reporting turns and free the pin; safe to call twice."""
