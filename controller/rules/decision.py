"""What the engine returns: a decision, its explanation, the charge lines and the usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.money import Money

#: Bumped whenever a rule's meaning changes, so a replay knows which engine decided.
RULES_VERSION = "rules/1"

Param = str | int
Params = tuple[tuple[str, Param], ...]


def params(**values: Param | None) -> Params:
    """Keyword parameters as a sorted, hashable tuple (``None`` values are left out)."""
    return tuple(sorted((k, v) for k, v in values.items() if v is not None))


@dataclass(frozen=True)
class Explanation:
    """A template key and its parameters; a screen renders it in the visitor's language.

    ``Explanation("denied.time_window.ended", (("end", "17:00"),))`` becomes "Only allowed
    before 17:00". Money parameters come as ``<name>`` (decimal, "12.50"), ``<name>_minor``
    and ``currency``; times as site-local ``HH:MM``; dates as ISO ``YYYY-MM-DD``.
    """

    key: str
    params: Params = ()

    def as_dict(self) -> Mapping[str, Param]:
        return dict(self.params)


def explain(key: str, **values: Param | None) -> Explanation:
    return Explanation(key, params(**values))


def money_params(prefix: str, amount: Money) -> dict[str, Param]:
    return {prefix: amount.decimal(), f"{prefix}_minor": amount.amount_minor}


@dataclass(frozen=True)
class ChargeLine:
    """One amount owed (or, among ``Decision.credits``, given back); never negative."""

    code: ChargeCode
    amount_minor: int
    currency: str
    params: Params = ()

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)


@dataclass(frozen=True)
class Usage:
    """How a granted entry advances the entitlement's counters in the catalog."""

    entitlement_id: str
    tariff_id: str
    consumed: bool  # counts an entry and starts a use (False: moving on inside)
    activates: date | None = None  # first use: set ``Entitlement.first_used``
    day_of_choice: date | None = None  # add to ``Entitlement.days_used``


@dataclass(frozen=True)
class Decision:
    """The engine's answer at a gate, on entry and on exit.

    ``charges`` are what this passage makes owed: at the final exit (to the outside) they
    are settled here and ``due_minor`` is what is still unpaid (the gate stays shut while
    it is above zero); leaving an inner zone, they are posted to the tab
    (``post_to_tab``) and the visitor walks on. ``credits`` give back a deposit.
    """

    allowed: bool
    code: RuleCode
    explanation: Explanation
    currency: str
    charges: tuple[ChargeLine, ...] = ()
    due_minor: int = 0
    credits: tuple[ChargeLine, ...] = ()
    post_to_tab: bool = False
    usage: Usage | None = None
    offline: bool = False  # decided under the tariff's offline policy
    rule_version: str = RULES_VERSION
    catalog_version: int = 0

    @property
    def charged_minor(self) -> int:
        return sum(c.amount_minor for c in self.charges)
