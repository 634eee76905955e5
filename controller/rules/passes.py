"""May this entitlement be used to enter now? Validity, passes and their allowances.

A *new use* (entering a tariff's area from outside it) is checked against everything: the
date range, the activation window (D days from first use), the entries left, the days of
choice left, the entry windows, the daily time allowance and the minimum gap. Moving on
inside zones the tariff already covers (pool -> sauna on a ticket for both) is not a new
use: it consumes nothing and only the tab rule applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.rules.codes import RuleCode
from controller.rules.decision import Explanation, Usage, explain
from controller.rules.model import Assurance, Credential, Entitlement, Gate, History, Site, Tariff
from controller.rules.timebands import in_any, local_hhmm, window_hint
from controller.rules.visits import used_on, visits


@dataclass(frozen=True)
class Refusal:
    code: RuleCode
    explanation: Explanation


def is_new_use(tariff: Tariff, gate: Gate) -> bool:
    """Entering ``tariff``'s area from outside it (not moving on inside it)."""
    return gate.zone_from is None or gate.zone_from not in tariff.zones


def uses_tab(tariff: Tariff, gate: Gate, site: Site) -> bool:
    """Whether this entry runs up charges paid later rather than at the exit gate: an
    entry price paid at exit, or a stay in an inner zone posted to the tab."""
    if tariff.pay_at_exit:
        return True
    if gate.zone_from is None:
        return False
    return any(z in tariff.stay for z in site.zones.entered(gate.zone_from, gate.zone_to))


def check_entry(
    credential: Credential,
    entitlement: Entitlement,
    tariff: Tariff,
    *,
    history: History,
    site: Site,
    gate: Gate,
    now: datetime,
) -> Usage | Refusal:
    """A :class:`Usage` if ``entitlement`` admits through ``gate`` at ``now``, else why not."""
    if credential.assurance is Assurance.UID_ONLY and uses_tab(tariff, gate, site):
        return Refusal(RuleCode.DENIED_LOW_ASSURANCE, explain("denied.low_assurance"))
    if not is_new_use(tariff, gate):
        return Usage(entitlement.id, tariff.id, consumed=False)
    return _check_new_use(entitlement, tariff, history=history, site=site, now=now)


def _check_new_use(
    ent: Entitlement, tariff: Tariff, *, history: History, site: Site, now: datetime
) -> Usage | Refusal:
    local = now.astimezone(site.tz)
    today = local.date()
    if ent.valid_from is not None and today < ent.valid_from:
        return Refusal(
            RuleCode.DENIED_NOT_YET_VALID,
            explain("denied.not_yet_valid", valid_from=ent.valid_from.isoformat()),
        )
    if ent.valid_to is not None and today > ent.valid_to:
        return Refusal(
            RuleCode.DENIED_EXPIRED,
            explain("denied.expired.entitlement", valid_to=ent.valid_to.isoformat()),
        )
    activates = None
    if tariff.valid_days is not None:
        first = ent.first_used if ent.first_used is not None else today
        last_day = first + timedelta(days=tariff.valid_days - 1)
        if today > last_day:
            return Refusal(
                RuleCode.DENIED_EXPIRED,
                explain("denied.expired.activation", valid_to=last_day.isoformat()),
            )
        activates = today if ent.first_used is None else None
    if tariff.entries is not None and ent.entries_used >= tariff.entries:
        return Refusal(
            RuleCode.DENIED_PASS_USED_UP, explain("denied.pass_used_up", entries=tariff.entries)
        )
    day_of_choice = None
    if tariff.days_of_choice is not None and today not in ent.days_used:
        if len(ent.days_used) >= tariff.days_of_choice:
            return Refusal(
                RuleCode.DENIED_DAYS_USED_UP,
                explain("denied.days_used_up", days=tariff.days_of_choice),
            )
        day_of_choice = today
    if tariff.entry_windows and not in_any(tariff.entry_windows, local, site.holidays):
        hint, at = window_hint(tariff.entry_windows, local, site.holidays)
        key = f"denied.time_window.{hint}"
        return Refusal(
            RuleCode.DENIED_TIME_WINDOW,
            explain(
                key, start=at if hint == "later" else None, end=at if hint == "ended" else None
            ),
        )
    past = visits(site.zones, history.passages, ent.id)
    if tariff.daily_allowance_minutes is not None:
        allowance = timedelta(minutes=tariff.daily_allowance_minutes)
        if used_on(today, site.tz, past, before=now) >= allowance:
            return Refusal(
                RuleCode.DENIED_DAILY_ALLOWANCE,
                explain("denied.daily_allowance", minutes=tariff.daily_allowance_minutes),
            )
    starts = [v.start.at for v in past if v.start.at <= now]
    if tariff.min_gap_minutes and starts:
        ready = max(starts) + timedelta(minutes=tariff.min_gap_minutes)
        if now < ready:
            return Refusal(
                RuleCode.DENIED_MIN_GAP,
                explain("denied.min_gap", retry_at=local_hhmm(ready, site.tz)),
            )
    return Usage(ent.id, tariff.id, consumed=True, activates=activates, day_of_choice=day_of_choice)
