"""Reference English wording of every explanation key.

Screens own their wording (and translations); this table is the reference they start
from, and the tests check that every key the engine produces is here and renders with the
parameters it comes with.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.rules.decision import Explanation

EN: Mapping[str, str] = {
    "granted": "Welcome",
    "granted.offline": "Welcome",
    "granted.exit": "Goodbye",
    "granted.exit.posted": "{amount} {currency} added to your tab",
    "granted.exit.refund": "Goodbye: {refund} {currency} deposit returned",
    "granted.posted": "{amount} {currency} added to your tab",
    "denied.unknown": "Wristband not recognised: please see the cashier",
    "denied.blocked": "Wristband blocked: please see the cashier",
    "denied.lost": "Wristband reported lost: please see the cashier",
    "denied.expired": "Wristband expired",
    "denied.expired.entitlement": "Ticket expired on {valid_to}",
    "denied.expired.activation": "Pass expired on {valid_to}",
    "denied.not_yet_valid": "Ticket valid from {valid_from}",
    "denied.low_assurance": "This wristband cannot carry a tab: please see the cashier",
    "denied.no_entitlement": "No ticket on this wristband",
    "denied.tariff_unknown": "Ticket not recognised: please see the cashier",
    "denied.zone": "Your ticket does not include {zone}",
    "denied.time_window.later": "Entry from {start}",
    "denied.time_window.ended": "Only allowed before {end}",
    "denied.time_window.day": "Not valid today",
    "denied.pass_used_up": "All {entries} entries used",
    "denied.days_used_up": "All {days} days used",
    "denied.daily_allowance": "Today's {minutes} minutes are used up",
    "denied.min_gap": "Next entry from {retry_at}",
    "denied.passback": "Already passed: try again after {retry_at}",
    "denied.capacity": "{zone} is full: please wait",
    "denied.owing": "{due} {currency} due — pay at the kiosk",
    "denied.owing.overtime": "Overtime {due} {currency} due — pay at the kiosk",
    "denied.offline": "Gate offline: please see the cashier",
    "denied.offline_budget": "Gate offline: entries used up, please see the cashier",
    "denied.tab_limit": "Tab limit of {limit} {currency} reached",
}


def render(explanation: Explanation, templates: Mapping[str, str] = EN) -> str:
    """The explanation in words (``KeyError`` if a key or a parameter is missing)."""
    return templates[explanation.key].format_map(explanation.as_dict())
