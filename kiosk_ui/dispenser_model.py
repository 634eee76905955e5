"""What a ticket dispenser's touch screen shows, as plain frozen data.

The dispenser runtime turns what it knows (the queue board central publishes, the outcome
of the last press, its faults) into a :class:`DispenserView` each frame;
kiosk_ui/dispenser_screen.py draws it and maps touches back to button names. Nothing here
knows about MQTT or pygame, so a view can be built in a test by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ServiceButton:
    """One touch button: pressing it is pressing the dispenser button ``button``."""

    #: The button's name as the runtime knows it (a key of ``dispenser.buttons``).
    button: str
    #: The service it issues tickets for (its id).
    service: str
    #: Shown on the button until central publishes the service's own name.
    name: str
    #: Issues priority tickets (``dispenser.priority_buttons``): marked on the button.
    priority: bool = False


@dataclass(frozen=True)
class LastOutcome:
    """What became of the last press, as the runtime's ``on_outcome`` reported it."""

    #: An ``entrada.codes.TicketOutcome`` value.
    code: str
    #: The outcome's detail: ``number`` when a ticket was issued, ``code`` when central
    #: refused, ``service`` always.
    detail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: When it happened, on the clock the screen's ``now`` is read from (monotonic).
    at: float = 0.0


@dataclass(frozen=True)
class DispenserView:
    """Everything one frame of the dispenser's screen shows."""

    #: service id -> (people waiting, estimated wait in seconds or None), from the board.
    services: Mapping[str, tuple[int, int | None]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: service id -> name, as central publishes it; a button's own name otherwise.
    names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: The last press's outcome (shown for a few seconds), None before the first.
    outcome: LastOutcome | None = None
    #: The device's current faults (``entrada.codes.Fault`` values).
    faults: frozenset[str] = frozenset()
    #: A ticket is being issued (waiting for central's number or the printer).
    busy: bool = False
    #: The language of the screen's words (see kiosk_ui/words.py).
    language: str = "en"
