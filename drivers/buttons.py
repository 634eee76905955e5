"""What a set of named buttons can do (free-pass key at a gate, service keys at a dispenser)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: Called from the driver's thread with the button's configured name.
PressCallback = Callable[[str], None]


@runtime_checkable
class Buttons(Protocol):
    names: tuple[str, ...]

    def start(self, on_press: PressCallback) -> None: ...

    def close(self) -> None: ...
