"""Prices and stay billing: entry prices by band, overtime per started interval with
grace and a daily cap, and the kiosk's time-stop.

Every interval is priced by the band in force at its local start, so a stay that crosses
midnight or a weekend boundary pays each part at its own rate, and the daily cap applies
per local day. Durations are real elapsed time (instants are UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from controller.rules.codes import ChargeCode
from controller.rules.decision import ChargeLine, params
from controller.rules.model import Site, StayRule, Tariff
from controller.rules.money import Money
from controller.rules.timebands import Rate, to_utc


def price_at(rate: Rate, concession: str, at: datetime, site: Site) -> Money:
    """The price of ``rate`` for ``concession`` at instant ``at`` (bands in local time)."""
    local = to_utc(at, "at").astimezone(site.tz)
    return Money(rate.price_minor(concession, local, site.holidays), site.currency)


def quote_entry(tariff: Tariff, concession: str, at: datetime | float, site: Site) -> Money:
    """What ``tariff`` costs ``concession`` when sold (or entered, if paid at exit) at ``at``."""
    if tariff.price is None:
        return Money.zero(site.currency)
    return price_at(tariff.price, concession, to_utc(at, "at"), site)


def billing_end(
    start: datetime, now: datetime, time_stops: Iterable[datetime], minutes: int
) -> datetime:
    """Where the stay clock stopped: the latest kiosk tap since ``start`` whose ``minutes``
    still cover ``now``, else ``now``."""
    if minutes <= 0:
        return now
    span = timedelta(minutes=minutes)
    covering = [t for t in time_stops if start <= t <= now <= t + span]
    return max(covering) if covering else now


def intervals_due(stay: timedelta, included: timedelta, rule: StayRule) -> int:
    """Started intervals beyond ``included``; none while within the grace minutes."""
    over = stay - included
    if over <= timedelta(minutes=rule.grace_minutes):
        return 0
    whole, rest = divmod(over, timedelta(minutes=rule.interval_minutes))
    return whole + (1 if rest > timedelta(0) else 0)


def stay_lines(
    rule: StayRule,
    *,
    zone: str,
    concession: str,
    start: datetime,
    end: datetime,
    site: Site,
    included: timedelta | None = None,
) -> tuple[ChargeLine, ...]:
    """Charge lines (one per local day with a charge) for a stay in ``zone``.

    ``included`` overrides the rule's included time (a pass's remaining daily allowance).
    """
    start, end = to_utc(start, "start"), to_utc(end, "end")
    inc = timedelta(minutes=rule.included_minutes) if included is None else included
    inc = max(inc, timedelta(0))
    n = intervals_due(max(end - start, timedelta(0)), inc, rule)
    step = timedelta(minutes=rule.interval_minutes)
    days: dict[date, list[int]] = {}  # local day -> [amount, intervals]
    for i in range(n):
        local = (start + inc + i * step).astimezone(site.tz)
        price = rule.rate.price_minor(concession, local, site.holidays)
        entry = days.setdefault(local.date(), [0, 0])
        entry[0] += price
        entry[1] += 1
    code = ChargeCode.OVERTIME if inc > timedelta(0) or included is not None else ChargeCode.STAY
    minutes = int((end - start) // timedelta(minutes=1))
    lines = []
    for day, (amount, count) in sorted(days.items()):
        capped = rule.daily_cap_minor is not None and amount > rule.daily_cap_minor
        if capped and rule.daily_cap_minor is not None:
            amount = rule.daily_cap_minor
        lines.append(
            ChargeLine(
                code,
                amount,
                site.currency,
                params(
                    zone=zone,
                    day=day.isoformat(),
                    intervals=count,
                    stay_minutes=minutes,
                    concession=concession,
                    capped=1 if capped else None,
                ),
            )
        )
    return tuple(line for line in lines if line.amount_minor > 0)


def stay_minor(
    rule: StayRule,
    *,
    concession: str,
    start: datetime,
    end: datetime,
    site: Site,
    included: timedelta | None = None,
) -> int:
    """Total of :func:`stay_lines`, in minor units."""
    lines = stay_lines(
        rule, zone="", concession=concession, start=start, end=end, site=site, included=included
    )
    return sum(line.amount_minor for line in lines)
