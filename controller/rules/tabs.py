"""The open tab: may a point of sale post a charge to this wristband?

A tab is credit: the visitor pays at the kiosk before the final exit (``engine`` settles
it there). So only secure media carry one: a UID-only wristband can be cloned, and is
refused here with ``denied.low_assurance``.
"""

from __future__ import annotations

from datetime import datetime

from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.decision import ChargeLine, Decision, explain, money_params, params
from controller.rules.engine import check_medium
from controller.rules.errors import RulesInputError
from controller.rules.model import Assurance, Credential, Direction, Entitlements, Site
from controller.rules.money import Money, check_minor
from controller.rules.timebands import to_utc


def authorize_posting(
    credential: Credential | None,
    entitlements: Entitlements,
    amount_minor: int,
    site: Site,
    now: datetime | float,
    *,
    ref: str = "",
) -> Decision:
    """Whether a POS may post ``amount_minor`` to the credential's tab at ``now``.

    Granted, ``charges`` holds the one line to post. Refused: unknown, blocked, lost or
    expired media, UID-only media, or a tab that would go over its limit.
    """
    if check_minor(amount_minor) <= 0:
        raise RulesInputError(f"a posting is a positive amount, got {amount_minor}")
    instant = to_utc(now)

    def deny(code: RuleCode, key: str, **values: str | int) -> Decision:
        return Decision(
            False,
            code,
            explain(key, **values),
            site.currency,
            catalog_version=site.catalog_version,
        )

    if credential is None:
        return deny(RuleCode.DENIED_UNKNOWN, "denied.unknown")
    refusal = check_medium(credential, Direction.IN, instant)
    if refusal is not None:
        return Decision(
            False,
            refusal.code,
            refusal.explanation,
            site.currency,
            catalog_version=site.catalog_version,
        )
    if credential.assurance is Assurance.UID_ONLY:
        return deny(RuleCode.DENIED_LOW_ASSURANCE, "denied.low_assurance")
    tab = entitlements.tab
    if tab.limit_minor is not None:
        owed_after = tab.posted_minor + amount_minor - tab.paid_minor
        if owed_after > tab.limit_minor:
            return deny(
                RuleCode.DENIED_TAB_LIMIT,
                "denied.tab_limit",
                currency=site.currency,
                **money_params("limit", Money(tab.limit_minor, site.currency)),
            )
    line = ChargeLine(ChargeCode.TAB, amount_minor, site.currency, params(ref=ref or None))
    return Decision(
        True,
        RuleCode.GRANTED,
        explain("granted.posted", currency=site.currency, **money_params("amount", line.money)),
        site.currency,
        charges=(line,),
        catalog_version=site.catalog_version,
    )
