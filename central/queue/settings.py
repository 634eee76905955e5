"""The ``[queue]`` section of central's config: services, counters, policy and timings.

Declared once with :mod:`entrada.config` (unknown keys are errors, every problem is
listed at once); the engine reads it as it is. Cross-references are checked here too: a
counter naming an unknown service, two services with the same id or prefix (two people
would hold "A042"), a range whose last number is below its first.

Example::

    [queue]
    timezone = "Europe/Warsaw"
    day_boundary = "04:00"
    policy = { name = "priority_ratio", ratio = "1:2", cap = 2 }

    [[queue.services]]
    id = "reg"
    name = "Registration"
    prefix = "A"
    first = 1
    last = 999

    [[queue.counters]]
    id = "c1"
    name = "Counter 1"
    services = { reg = 2.0, pay = 1.0 }
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator, model_validator

from central.queue.businessday import BOUNDARY_PATTERN, BusinessDayError, zone
from central.queue.policies import parse_ratio
from entrada.config import Section, option, section

QUEUE_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
PREFIX_PATTERN = r"^[A-Za-z0-9]{0,4}$"


class ServiceDef(Section):
    """A service customers queue for (a ``[[queue.services]]`` entry)."""

    id: str = option(
        ..., "Service id (in topics, ticket ids and reports).", pattern=QUEUE_ID_PATTERN
    )
    name: str = option("", "Name shown on boards and dispensers (default: the id).")
    prefix: str = option(
        "", "Letters before the number on the ticket: 'A' gives A042.", pattern=PREFIX_PATTERN
    )
    first: int = option(1, "First ticket number of the day.", ge=0, le=999_999)
    last: int = option(999, "Last ticket number of the day.", ge=0, le=999_999)
    target_wait: float = option(
        900.0, "Waiting time the office aims to stay under (for reports).", unit="s", ge=1
    )
    avg_service: float = option(
        300.0,
        "Typical time a counter spends on one ticket: the wait estimate until there is "
        "recent history.",
        unit="s",
        ge=1,
    )

    @property
    def title(self) -> str:
        return self.name or self.id

    def label(self, number: int) -> str:
        """The ticket's printed number: the prefix, then the number zero-padded to the
        width of the range's last number."""
        return f"{self.prefix}{number:0{len(str(self.last))}d}"


class CounterDef(Section):
    """A counter (a ``[[queue.counters]]`` entry) and the services it serves."""

    id: str = option(..., "Counter id.", pattern=QUEUE_ID_PATTERN)
    name: str = option("", "Name shown on boards ('Counter 3'; default: the id).")
    services: dict[str, float] = option(
        ...,
        "Services served here, with their weight (longest_wait multiplies the waiting "
        "time by it; the wait estimate shares the counter by it).",
        example={"reg": 2.0, "pay": 1.0},
    )

    @field_validator("services")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in value.items() if not w > 0]
        if bad:
            raise ValueError(f"weights must be greater than 0 (see {', '.join(bad)})")
        return value

    @property
    def title(self) -> str:
        return self.name or self.id


class PolicySection(Section):
    """Which waiting ticket "call next" takes (see central/queue/policies.py)."""

    name: Literal["fifo", "priority_ratio", "longest_wait"] = option("fifo", "Policy.")
    ratio: str = option(
        "1:2",
        "priority_ratio: P priority calls then N normal calls while both wait ('1:2': one "
        "priority per two normal).",
        pattern=r"^[0-9]+:[0-9]+$",
    )
    cap: int = option(
        2, "priority_ratio: most priority calls in a row while normal tickets wait.", ge=1
    )

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, value: str) -> str:
        parse_ratio(value)
        return value

    def params(self) -> dict[str, Any]:
        """The keyword arguments of the policy's class."""
        if self.name == "priority_ratio":
            return {"ratio": self.ratio, "cap": self.cap}
        return {}


class QueueSection(Section):
    """The queue engine: services, counters, the next-ticket policy, appointments."""

    timezone: str = option(
        "UTC",
        "The site's IANA time zone: business days and hourly figures are local.",
        example="Europe/Warsaw",
    )
    day_boundary: str = option(
        "04:00",
        "Local time at which a business day (and its numbering) starts.",
        pattern=BOUNDARY_PATTERN,
    )
    policy: PolicySection = section(PolicySection)
    max_recalls: int = option(
        2, "Recalls of a called ticket; one more marks it a no-show.", ge=0, le=20
    )
    appointment_early: float = option(
        60.0, "Check-in opens this long before the slot.", unit="min", ge=0, le=24 * 60
    )
    appointment_late: float = option(
        15.0,
        "Check-in closes this long after the slot; an appointment not checked in by then is "
        "cancelled as a no-show.",
        unit="min",
        ge=0,
        le=24 * 60,
    )
    lease_size: int = option(
        50, "Numbers in a block leased to a dispenser for offline issuing.", ge=1, le=10_000
    )
    recent_calls: int = option(6, "Past calls shown on the boards.", ge=0, le=50)
    estimate_window: float = option(
        1800.0,
        "Finished tickets younger than this give the service rates behind wait estimates.",
        unit="s",
        ge=60,
        le=86_400,
    )
    site_name: str = option("", "Shown on the boards and printed on tickets.")
    ticker: str = option("", "A line scrolling along the bottom of every board.")
    confirm_grace: float = option(
        30.0,
        "A call not confirmed by every display board within this time is reported unconfirmed.",
        unit="s",
        ge=1,
        le=3600,
    )
    services: list[ServiceDef] = option([], "The services.")
    counters: list[CounterDef] = option([], "The counters.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except BusinessDayError as err:
            raise ValueError(str(err)) from err
        return value

    @model_validator(mode="after")
    def _references(self) -> QueueSection:
        problems: list[str] = []
        seen: set[str] = set()
        prefixes: dict[str, str] = {}
        for s in self.services:
            if s.id in seen:
                problems.append(f"service {s.id!r} is declared twice")
            seen.add(s.id)
            if s.last < s.first:
                problems.append(f"service {s.id!r}: last ({s.last}) is below first ({s.first})")
            other = prefixes.setdefault(s.prefix.upper(), s.id)
            if other != s.id:
                problems.append(
                    f"services {other!r} and {s.id!r} share the prefix {s.prefix!r} "
                    "(two tickets would carry the same number)"
                )
        counters: set[str] = set()
        for c in self.counters:
            if c.id in counters:
                problems.append(f"counter {c.id!r} is declared twice")
            counters.add(c.id)
            for sid in c.services:
                if sid not in seen:
                    problems.append(f"counter {c.id!r} serves unknown service {sid!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def service(self, service_id: str) -> ServiceDef | None:
        return next((s for s in self.services if s.id == service_id), None)

    def counter(self, counter_id: str) -> CounterDef | None:
        return next((c for c in self.counters if c.id == counter_id), None)
