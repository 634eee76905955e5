"""The dispenser's decisions: which way a number comes, which business day it is, which
blocks to lease. Pure functions of what they are given (``now`` included).

A press takes the online way when central is in contact (a :class:`~entrada.
protocol_queue.TicketRequest`, numbered by central in sequence) and the offline way
otherwise, or when central does not answer within ``request_timeout`` (the next number of
a block leased in advance). Either way the printer is asked first: a printer that cannot
print takes no number at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from entrada.protocol_queue import QueueBoard

#: A business day's length, for the days after the last one a board told (a day that
#: ends an hour off at a DST change moves the switch by that hour at most).
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class DayView:
    """The business day as the last board told it (None: no board seen yet)."""

    business_day: str
    day_ends_at: float

    @classmethod
    def of(cls, board: QueueBoard | None) -> DayView | None:
        return None if board is None else cls(board.business_day, board.day_ends_at)

    def day_at(self, now: float) -> str:
        """The business day at ``now``: past the end of the board's day it is the next
        one (a dispenser offline across the boundary issues the new day's numbers), and
        each further :data:`DAY_SECONDS` without a board the day after: numbers of a day
        long gone are not issued."""
        if now < self.day_ends_at:
            return self.business_day
        days_on = 1 + int((now - self.day_ends_at) // DAY_SECONDS)
        return (date.fromisoformat(self.business_day) + timedelta(days=days_on)).isoformat()

    def next_day(self) -> str:
        return next_day(self.business_day)


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def format_number(prefix: str, number: int, digits: int) -> str:
    """``A`` + 42 with 3 digits -> ``A042``: the form printed, shown and announced."""
    return f"{prefix}{number:0{digits}d}"


def leases_wanted(
    services: list[str],
    left: dict[tuple[str, str], int],
    day: DayView,
    now: float,
    *,
    low: int,
    ahead: float,
) -> list[tuple[str, str]]:
    """``(service, business_day)`` pairs that need another block: fewer than ``low``
    unused numbers left today, or tomorrow once the day ends within ``ahead`` seconds."""
    days = [day.day_at(now)]
    if now < day.day_ends_at and day.day_ends_at - now <= ahead:
        days.append(day.next_day())
    return [(service, d) for d in days for service in services if left.get((service, d), 0) < low]


def wait_minutes(est_wait_s: int | None) -> int | None:
    """Whole minutes for the ticket, rounded up (a 20 s wait is "1 min", never "0")."""
    if est_wait_s is None:
        return None
    return (est_wait_s + 59) // 60
