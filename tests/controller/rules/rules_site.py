"""The example site of the rules tests and of docs/rules.md (same catalog).

Aquapark "Fala" in Warsaw: facility ⊃ pool ⊃ sauna. The entrance turnstile goes from the
outside into the facility, the exit one back out; inner gates lead into the pool and the
sauna. Prices in grosz (1/100 PLN).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from controller.rules.catalog_schema import parse_catalog
from controller.rules.engine import decide
from controller.rules.model import (
    Credential,
    Direction,
    Entitlement,
    Entitlements,
    Gate,
    History,
    Passage,
    Presence,
    Tab,
)

WARSAW = ZoneInfo("Europe/Warsaw")

WEEKEND = ["sat", "sun", "hol"]
CATALOG = {
    "version": 42,
    "site": {
        "id": "fala",
        "tz": "Europe/Warsaw",
        "currency": "PLN",
        "holidays": ["2028-05-03", "2028-11-01"],
        "passback_minutes": 3,
    },
    "zones": [
        {"id": "facility", "capacity": 500},
        {"id": "pool", "parent": "facility", "capacity": 300},
        {"id": "sauna", "parent": "pool", "capacity": 20},
    ],
    "tariffs": [
        {
            "id": "single",
            "name": "Single entry",
            "zones": ["facility", "pool"],
            "entries": 1,
            "price": {
                "prices": {
                    "adult": 3500,
                    "child": 2000,
                    "senior": 2500,
                    "student": 2800,
                    "disabled": 1500,
                },
                "bands": [
                    {"days": WEEKEND, "prices": {"adult": 4500, "child": 2500}},
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "20:00",
                        "end": "22:00",
                        "prices": {"adult": 2500},
                    },
                ],
            },
            "offline": {"after_minutes": 60, "mode": "admit", "budget": 1},
        },
        {
            "id": "timed-2h",
            "name": "2 hours",
            "zones": ["facility", "pool"],
            "entries": 1,
            "price": {"prices": {"adult": 4000, "child": 2500}},
            "entry_windows": [{"start": "06:00", "end": "22:00"}],
            "stay": {
                "facility": {
                    "included_minutes": 120,
                    "interval_minutes": 15,
                    "grace_minutes": 5,
                    "daily_cap_minor": 6000,
                    "rate": {
                        "prices": {"adult": 500, "child": 300},
                        "bands": [{"days": WEEKEND, "prices": {"adult": 700, "child": 400}}],
                    },
                }
            },
            "time_stop_minutes": 10,
        },
        {
            "id": "day-sauna",
            "name": "Day ticket with sauna billed by time",
            "zones": ["facility", "pool", "sauna"],
            "entries": 1,
            "price": {"prices": {"adult": 6000}},
            "stay": {
                "sauna": {
                    "interval_minutes": 30,
                    "daily_cap_minor": 3000,
                    "rate": {"prices": {"adult": 1000, "senior": 700}},
                }
            },
        },
        {
            "id": "pass-10",
            "name": "10 entries within 90 days of the first",
            "zones": ["facility", "pool"],
            "entries": 10,
            "valid_days": 90,
            "min_gap_minutes": 60,
            "offline": {"after_minutes": 30, "mode": "admit", "budget": 2},
        },
        {
            "id": "month-2h",
            "name": "Month pass, 2 hours a day",
            "zones": ["facility", "pool"],
            "daily_allowance_minutes": 120,
            "stay": {"facility": {"interval_minutes": 15, "rate": {"prices": {"adult": 600}}}},
        },
        {
            "id": "flex-3",
            "name": "Any 3 days",
            "zones": ["facility", "pool"],
            "days_of_choice": 3,
        },
        {
            "id": "activation-2",
            "name": "2 days from first use",
            "zones": ["facility", "pool"],
            "valid_days": 2,
        },
        {
            "id": "morning",
            "name": "Weekday morning",
            "zones": ["facility", "pool"],
            "entry_windows": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "17:00"}
            ],
        },
        {
            "id": "night-sauna",
            "name": "Friday and Saturday night sauna",
            "zones": ["facility", "pool", "sauna"],
            "entry_windows": [{"days": ["fri", "sat"], "start": "22:00", "end": "02:00"}],
        },
        {
            "id": "postpaid",
            "name": "Pay at exit",
            "zones": ["facility", "pool"],
            "pay_at_exit": True,
            "price": {
                "prices": {"adult": 4000, "child": 2400},
                "bands": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "06:00",
                        "end": "15:00",
                        "prices": {"adult": 3000, "child": 1800},
                    }
                ],
            },
            "offline": {"after_minutes": 0, "mode": "deny"},
        },
        {
            "id": "sauna-3",
            "name": "3 sauna entries (an add-on)",
            "zones": ["sauna"],
            "entries": 3,
        },
    ],
}

SITE = parse_catalog(CATALOG)

ENTRANCE = Gate("g-entrance", None, "facility", Direction.IN)
EXIT = Gate("g-exit", "facility", None, Direction.OUT)
EXIT_COLLECTOR = Gate("g-exit-2", "facility", None, Direction.OUT, collects_media=True)
POOL_IN = Gate("g-pool-in", "facility", "pool", Direction.IN)
POOL_OUT = Gate("g-pool-out", "pool", "facility", Direction.OUT)
SAUNA_IN = Gate("g-sauna-in", "pool", "sauna", Direction.IN)
SAUNA_OUT = Gate("g-sauna-out", "sauna", "pool", Direction.OUT)

BAND = Credential("04A1B2C3D4E5F6")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    """A Warsaw wall-clock time (``fold=1``: the second 02:30 of the autumn change)."""
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW, fold=fold)


def ent(tariff_id: str, eid: str = "e1", **kw: object) -> Entitlement:
    return Entitlement(eid, tariff_id, **kw)


def came_in(when: datetime, e: Entitlement, gate: Gate = ENTRANCE, **kw: object) -> Passage:
    """The passage a granted new use through ``gate`` records."""
    return Passage(
        when,
        gate.zone_from,
        gate.zone_to,
        gate.direction,
        entitlement_id=e.id,
        tariff_id=e.tariff_id,
        consumed=kw.pop("consumed", True),
        gate_id=gate.id,
        **kw,
    )


def went(when: datetime, gate: Gate, e: Entitlement | None = None, **kw: object) -> Passage:
    """A passage that consumed nothing (an exit, or moving on inside)."""
    return Passage(
        when,
        gate.zone_from,
        gate.zone_to,
        gate.direction,
        entitlement_id=e.id if e else None,
        tariff_id=e.tariff_id if e else None,
        gate_id=gate.id,
        **kw,
    )


def tap(
    gate: Gate,
    now: datetime,
    *ents: Entitlement,
    credential: Credential | None = BAND,
    passages: tuple[Passage, ...] = (),
    time_stops: tuple[datetime, ...] = (),
    occupancy: dict[str, int] | None = None,
    tab: Tab | None = None,
    minutes_offline: float | None = None,
    site=SITE,
):
    return decide(
        credential,
        Entitlements(tuple(ents), tab or Tab()),
        History(passages, time_stops),
        Presence(occupancy or {}),
        site,
        gate,
        now,
        minutes_offline=minutes_offline,
    )
