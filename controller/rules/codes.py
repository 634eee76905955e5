"""Stable codes of the tariff and admission engine.

Events, logs, reports, screens and tests key on these values; a screen turns a code (and
its explanation key and parameters) into words, so it can be translated. Never rename or
reuse a value: add a new one. The values of ``entrada.codes.Outcome`` that mean the same
thing are the same strings (``granted``, ``denied.unknown``...), so a report can mix both.
"""

from enum import StrEnum


class RuleCode(StrEnum):
    """What the engine decided about a credential at a gate (entry or exit)."""

    GRANTED = "granted"
    GRANTED_OFFLINE = "granted.offline"
    GRANTED_UNMATCHED_EXIT = "granted.unmatched_exit"

    # the medium itself
    DENIED_UNKNOWN = "denied.unknown"
    DENIED_BLOCKED = "denied.blocked"
    DENIED_LOST = "denied.lost"
    DENIED_EXPIRED = "denied.expired"
    DENIED_LOW_ASSURANCE = "denied.low_assurance"

    # the entitlement
    DENIED_NO_ENTITLEMENT = "denied.no_entitlement"
    DENIED_TARIFF_UNKNOWN = "denied.tariff_unknown"
    DENIED_ZONE = "denied.zone"
    DENIED_NOT_YET_VALID = "denied.not_yet_valid"
    DENIED_TIME_WINDOW = "denied.time_window"
    DENIED_PASS_USED_UP = "denied.pass_used_up"  # noqa: S105 (a code, not a password)
    DENIED_DAYS_USED_UP = "denied.days_used_up"
    DENIED_DAILY_ALLOWANCE = "denied.daily_allowance"
    DENIED_MIN_GAP = "denied.min_gap"

    # the place and the moment
    DENIED_PASSBACK = "denied.passback"
    DENIED_CAPACITY = "denied.capacity"
    DENIED_OWING = "denied.owing"
    DENIED_OFFLINE = "denied.offline"
    DENIED_OFFLINE_BUDGET = "denied.offline_budget"

    # a point of sale posting to an open tab
    DENIED_TAB_LIMIT = "denied.tab_limit"


class ChargeCode(StrEnum):
    """What a charge line (or a credit line) is for."""

    ENTRY = "entry"  # an entry price charged at exit (a pay-at-exit tariff)
    OVERTIME = "overtime"  # time beyond what the ticket includes
    STAY = "stay"  # time billed from the first minute (a per-zone stay, e.g. the sauna)
    TAB = "tab"  # a posting by a point of sale (bar, shop, massage)
    DEPOSIT_APPLIED = "deposit.applied"  # credit: the deposit pays what is due
    DEPOSIT_REFUND = "deposit.refund"  # credit: what is left of the deposit goes back
