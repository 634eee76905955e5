"""What a waiting-room display board shows, as plain frozen data.

The display role turns the queue board state that central publishes (retained, so a
rebooted board is right at once) into a :class:`BoardView`; kiosk_ui/board.py draws it.
Nothing here knows about MQTT or pygame, so a view can be built in a test by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BoardCall:
    """A ticket called to a counter."""

    call_id: str
    #: As printed on the ticket, e.g. "A042".
    ticket: str
    #: The counter's label as shown and said, e.g. "3".
    counter_name: str
    #: The service the ticket is for (its id).
    service: str
    #: When the call was made (epoch seconds, central's clock).
    called_at: float
    #: How many times this call was repeated; each recall is shown as new again.
    recall: int = 0


@dataclass(frozen=True)
class ServiceLine:
    """One service's queue: how many wait and about how long."""

    service: str
    name: str
    waiting: int
    #: Estimated wait in seconds, None when central cannot tell yet.
    est_wait_s: int | None = None


@dataclass(frozen=True)
class BoardView:
    """Everything one frame of the board shows."""

    site_name: str
    #: The calls being served now, newest first.
    calls: tuple[BoardCall, ...] = ()
    #: The last calls made, newest first.
    recent: tuple[BoardCall, ...] = ()
    services: tuple[ServiceLine, ...] = ()
    #: A line of news or instructions scrolling along the bottom ("" for none).
    ticker: str = ""
    #: The language of the board's words (see kiosk_ui/words.py).
    language: str = "en"
