"""``decide``: the one place an admission or an exit is decided.

Pure: everything comes in as a value (``now`` and the minutes without central included)
and a :class:`~controller.rules.decision.Decision` comes back. Same inputs, same decision,
so central can replay what a gate decided, offline or not.

Entry, in order: the medium (unknown, blocked, lost, expired) -> anti-passback -> an
entitlement for the zone (new use or moving on inside, see ``passes``) -> the tariff's
offline policy -> capacity of every zone entered.

Exit, in order: the medium (unknown, blocked, lost; an expired one may still leave) ->
anti-passback -> the stays in the zones left, billed by the tariff that admitted to each
(entry price if paid at exit, overtime or per-zone stay, time-stop) -> leaving an inner
zone, the charges go to the tab; leaving to the outside, everything owed is settled here
(charges, tab postings, less what was paid and, at a collecting gate, the deposit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.rules.billing import billing_end, quote_entry, stay_lines
from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.decision import (
    ChargeLine,
    Decision,
    Explanation,
    Usage,
    explain,
    money_params,
    params,
)
from controller.rules.errors import RulesInputError
from controller.rules.model import (
    Concession,
    Credential,
    Direction,
    Entitlement,
    Entitlements,
    Gate,
    History,
    MediaStatus,
    OfflineMode,
    Passage,
    Presence,
    Site,
    Tariff,
)
from controller.rules.money import Money
from controller.rules.passes import Refusal, check_entry, is_new_use
from controller.rules.timebands import local_hhmm, to_utc
from controller.rules.visits import last_crossing, stay_entry, used_on, visit_zone, visits


@dataclass(frozen=True)
class _Context:
    credential: Credential
    entitlements: Entitlements
    history: History
    presence: Presence
    site: Site
    gate: Gate
    now: datetime
    minutes_offline: float | None

    def decision(
        self,
        allowed: bool,
        code: RuleCode,
        explanation: Explanation,
        *,
        charges: tuple[ChargeLine, ...] = (),
        due_minor: int = 0,
        credits: tuple[ChargeLine, ...] = (),
        post_to_tab: bool = False,
        usage: Usage | None = None,
        offline: bool = False,
    ) -> Decision:
        return Decision(
            allowed,
            code,
            explanation,
            self.site.currency,
            charges=charges,
            due_minor=due_minor,
            credits=credits,
            post_to_tab=post_to_tab,
            usage=usage,
            offline=offline,
            catalog_version=self.site.catalog_version,
        )

    def deny(self, refusal: Refusal, *, offline: bool = False) -> Decision:
        return self.decision(False, refusal.code, refusal.explanation, offline=offline)


def decide(
    credential: Credential | None,
    entitlements: Entitlements,
    history: History,
    presence: Presence,
    site: Site,
    gate: Gate,
    now: datetime | float,
    *,
    minutes_offline: float | None = None,
) -> Decision:
    """Decide a tap of ``credential`` at ``gate`` at ``now`` (aware datetime or Unix time).

    ``minutes_offline`` is how long the gate has been without central (``None`` or 0:
    online). ``credential`` is ``None`` when the catalog does not know the medium.
    """
    instant = to_utc(now)
    check_gate(site, gate)
    if credential is None:
        return Decision(
            False,
            RuleCode.DENIED_UNKNOWN,
            explain("denied.unknown"),
            site.currency,
            catalog_version=site.catalog_version,
        )
    ctx = _Context(
        credential, entitlements, history, presence, site, gate, instant, minutes_offline
    )
    refusal = check_medium(credential, gate.direction, instant)
    if refusal is not None:
        return ctx.deny(refusal)
    if gate.direction is Direction.IN:
        return _entry(ctx)
    return _exit(ctx)


def check_gate(site: Site, gate: Gate) -> None:
    """RulesInputError unless ``gate`` goes between a zone and one of its ancestors."""
    tree = site.zones
    inner, outer = (
        (gate.zone_to, gate.zone_from)
        if gate.direction is Direction.IN
        else (gate.zone_from, gate.zone_to)
    )
    if inner is None or inner == outer or outer not in (None, *tree.path(inner)[:-1]):
        raise RulesInputError(
            f"gate {gate.id!r}: {gate.direction} from {gate.zone_from!r} to {gate.zone_to!r} "
            "does not go between a zone and one of its ancestors"
        )


def check_medium(credential: Credential, direction: Direction, now: datetime) -> Refusal | None:
    """Why the medium itself is refused, if it is (``now`` is a UTC instant)."""
    if credential.status is MediaStatus.BLOCKED:
        return Refusal(RuleCode.DENIED_BLOCKED, explain("denied.blocked"))
    if credential.status is MediaStatus.LOST:
        return Refusal(RuleCode.DENIED_LOST, explain("denied.lost"))
    if direction is Direction.OUT:
        return None  # an expired medium still leaves (and pays what it owes)
    if credential.status is MediaStatus.EXPIRED:
        return Refusal(RuleCode.DENIED_EXPIRED, explain("denied.expired"))
    if credential.valid_until is not None and now > credential.valid_until:
        return Refusal(RuleCode.DENIED_EXPIRED, explain("denied.expired"))
    return None


def _passback(ctx: _Context, zone: str, entering: bool) -> Refusal | None:
    """Denied if the last crossing of ``zone`` went the same way less than the timeout ago."""
    if not ctx.site.passback_minutes:
        return None
    last = last_crossing(ctx.site.zones, ctx.history.passages, zone, ctx.now)
    if last is None or last[1] is not entering:
        return None
    retry = last[0].at + timedelta(minutes=ctx.site.passback_minutes)
    if ctx.now >= retry:
        return None
    return Refusal(
        RuleCode.DENIED_PASSBACK,
        explain("denied.passback", retry_at=local_hhmm(retry, ctx.site.tz)),
    )


# ---------------------------------------------------------------------------------- entry


def _entry(ctx: _Context) -> Decision:
    site, gate = ctx.site, ctx.gate
    zone = gate.zone_to
    assert zone is not None  # checked by check_gate
    refusal = _passback(ctx, zone, entering=True)
    if refusal is not None:
        return ctx.deny(refusal)

    covering: list[tuple[Entitlement, Tariff]] = []
    unknown_tariff = False
    for ent in ctx.entitlements.items:
        tariff = site.tariffs.get(ent.tariff_id)
        if tariff is None:
            unknown_tariff = True
        elif zone in tariff.zones:
            covering.append((ent, tariff))
    if not covering:
        if unknown_tariff:
            return ctx.deny(
                Refusal(RuleCode.DENIED_TARIFF_UNKNOWN, explain("denied.tariff_unknown"))
            )
        if ctx.entitlements.items:
            return ctx.deny(Refusal(RuleCode.DENIED_ZONE, explain("denied.zone", zone=zone)))
        return ctx.deny(Refusal(RuleCode.DENIED_NO_ENTITLEMENT, explain("denied.no_entitlement")))

    # moving on inside a tariff's area before starting a new use of another one
    covering.sort(key=lambda pair: is_new_use(pair[1], gate))
    first_refusal: Refusal | None = None
    chosen: tuple[Entitlement, Tariff, Usage] | None = None
    for ent, tariff in covering:
        verdict = check_entry(
            ctx.credential, ent, tariff, history=ctx.history, site=site, gate=gate, now=ctx.now
        )
        if isinstance(verdict, Usage):
            chosen = (ent, tariff, verdict)
            break
        first_refusal = first_refusal or verdict
    if chosen is None:
        assert first_refusal is not None
        return ctx.deny(first_refusal)
    ent, tariff, usage = chosen

    offline = _offline_refusal(ctx, tariff, usage)
    if isinstance(offline, Refusal):
        return ctx.deny(offline, offline=True)

    for entered in site.zones.entered(gate.zone_from, zone):
        if site.zones.full(entered, ctx.presence.occupancy):
            return ctx.deny(
                Refusal(RuleCode.DENIED_CAPACITY, explain("denied.capacity", zone=entered))
            )

    code = RuleCode.GRANTED_OFFLINE if offline else RuleCode.GRANTED
    return ctx.decision(
        True, code, _welcome(code, ent, tariff, usage), usage=usage, offline=offline
    )


def _offline_refusal(ctx: _Context, tariff: Tariff, usage: Usage) -> Refusal | bool:
    """A refusal under the tariff's offline policy, else whether the policy applied."""
    policy = tariff.offline
    if not ctx.minutes_offline or ctx.minutes_offline <= policy.after_minutes:
        return False
    if policy.mode is OfflineMode.DENY:
        return Refusal(RuleCode.DENIED_OFFLINE, explain("denied.offline"))
    if policy.budget is not None and usage.consumed:
        since = ctx.now - timedelta(minutes=ctx.minutes_offline)
        spent = sum(
            1
            for p in ctx.history.passages
            if p.offline and p.consumed and p.direction is Direction.IN and since <= p.at
        )
        if spent >= policy.budget:
            return Refusal(
                RuleCode.DENIED_OFFLINE_BUDGET,
                explain("denied.offline_budget", budget=policy.budget),
            )
    return True


def _welcome(code: RuleCode, ent: Entitlement, tariff: Tariff, usage: Usage) -> Explanation:
    """Welcome, with what is left of a pass (entries, days, last valid day)."""
    if not usage.consumed:
        return explain(str(code))
    entries_left = days_left = valid_to = None
    if tariff.entries is not None:
        entries_left = tariff.entries - ent.entries_used - 1
    if tariff.days_of_choice is not None:
        days_left = tariff.days_of_choice - len(ent.days_used) - (1 if usage.day_of_choice else 0)
    if tariff.valid_days is not None:
        first = ent.first_used or usage.activates
        if first is not None:
            valid_to = (first + timedelta(days=tariff.valid_days - 1)).isoformat()
    return explain(str(code), entries_left=entries_left, days_left=days_left, valid_to=valid_to)


# ----------------------------------------------------------------------------------- exit


def _exit(ctx: _Context) -> Decision:
    site, gate = ctx.site, ctx.gate
    assert gate.zone_from is not None  # checked by check_gate
    refusal = _passback(ctx, gate.zone_from, entering=False)
    if refusal is not None:
        return ctx.deny(refusal)

    charges: list[ChargeLine] = []
    matched = False
    for zone in site.zones.left(gate.zone_from, gate.zone_to):
        entry = stay_entry(site.zones, ctx.history.passages, zone, ctx.now)
        if entry is None:
            continue
        matched = matched or zone == gate.zone_from
        charges.extend(_stay_charges(ctx, zone, entry))
    code = RuleCode.GRANTED if matched else RuleCode.GRANTED_UNMATCHED_EXIT
    lines = tuple(charges)

    if gate.zone_to is not None:  # leaving an inner zone: charges go to the tab
        posted = sum(c.amount_minor for c in lines)
        money = Money(posted, site.currency)
        explanation = (
            explain("granted.exit.posted", currency=site.currency, **money_params("amount", money))
            if posted
            else explain("granted.exit")
        )
        return ctx.decision(True, code, explanation, charges=lines, post_to_tab=bool(lines))
    return _settle(ctx, code, lines)


def _stay_charges(ctx: _Context, zone: str, entry: Passage) -> list[ChargeLine]:
    """What the stay in ``zone`` since ``entry`` costs, by the tariff that admitted to it."""
    site = ctx.site
    tariff = site.tariffs.get(entry.tariff_id or "")
    if tariff is None:
        return []
    ent = ctx.entitlements.find(entry.entitlement_id)
    concession = ent.concession if ent is not None else Concession.ADULT
    starts_visit = entry.consumed and visit_zone(site.zones, entry) == zone
    lines: list[ChargeLine] = []
    if starts_visit and tariff.pay_at_exit and tariff.price is not None:
        price = quote_entry(tariff, concession, entry.at, site)
        if price.amount_minor > 0:
            lines.append(
                ChargeLine(
                    ChargeCode.ENTRY,
                    price.amount_minor,
                    site.currency,
                    params(tariff=tariff.id, concession=str(concession), zone=zone),
                )
            )
    rule = tariff.stay.get(zone)
    if rule is None:
        return lines
    end = billing_end(entry.at, ctx.now, ctx.history.time_stops, tariff.time_stop_minutes)
    included = None
    if starts_visit and tariff.daily_allowance_minutes is not None and entry.entitlement_id:
        day = entry.at.astimezone(site.tz).date()
        past = visits(site.zones, ctx.history.passages, entry.entitlement_id)
        used = used_on(day, site.tz, past, before=entry.at)
        included = timedelta(minutes=tariff.daily_allowance_minutes) - used
    lines.extend(
        stay_lines(
            rule,
            zone=zone,
            concession=str(concession),
            start=entry.at,
            end=end,
            site=site,
            included=included,
        )
    )
    return lines


def _settle(ctx: _Context, code: RuleCode, lines: tuple[ChargeLine, ...]) -> Decision:
    """The final exit: everything owed is paid here, or the gate stays shut."""
    site, tab = ctx.site, ctx.entitlements.tab
    tab_lines = tuple(
        ChargeLine(
            ChargeCode.TAB,
            p.amount_minor,
            site.currency,
            params(ref=p.ref, description=p.description or None),
        )
        for p in tab.postings
        if p.amount_minor > 0
    )
    owed = lines + tab_lines
    due = max(sum(c.amount_minor for c in owed) - tab.paid_minor, 0)
    deposit = ctx.credential.deposit_minor if ctx.gate.collects_media else 0
    if due > deposit:
        owing = Money(due, site.currency)
        only_overtime = bool(owed) and all(c.code is ChargeCode.OVERTIME for c in owed)
        key = "denied.owing.overtime" if only_overtime else "denied.owing"
        return ctx.decision(
            False,
            RuleCode.DENIED_OWING,
            explain(key, currency=site.currency, **money_params("due", owing)),
            charges=owed,
            due_minor=due,
        )
    credits: list[ChargeLine] = []
    if deposit and due:
        credits.append(ChargeLine(ChargeCode.DEPOSIT_APPLIED, due, site.currency))
    if deposit > due:
        credits.append(ChargeLine(ChargeCode.DEPOSIT_REFUND, deposit - due, site.currency))
    refund = Money(deposit - due, site.currency)
    explanation = (
        explain("granted.exit.refund", currency=site.currency, **money_params("refund", refund))
        if deposit > due
        else explain("granted.exit")
    )
    return ctx.decision(True, code, explanation, charges=owed, credits=tuple(credits))
