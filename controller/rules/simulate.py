"""``entrada rules simulate``: run a day of sales, taps and payments through the engine.

An operator writes what happens (gates, wristbands, sales, taps, postings, payments,
kiosk time-stops) as JSON Lines and runs it against a rules document before publishing
it. Every decision is assembled exactly as a gate assembles it
(:mod:`controller.rules.assemble`): a granted tap adds :func:`recorded_passage` to the
wristband's passages, a denied one records nothing, occupancy is the people whose latest
passage put them in each zone.

Pure: :func:`parse_rules` takes the rules document, :func:`parse_input` the input's text,
:func:`run` returns values; reading files and printing are the CLI's
(``entrada/cli_rules.py``). The input format is documented in docs/rules.md,
"Simulating a change".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.rules.assemble import (
    WristbandRecord,
    assemble,
    credential,
    occupancy_of,
    recorded_passage,
    tab_of,
)
from controller.rules.billing import quote_entry
from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.decision import Decision, Explanation, money_params, params
from controller.rules.explain import EN
from controller.rules.model import Concession, Direction, Entitlements, Gate, Site
from controller.rules.money import Money
from controller.rules.sim_input import (
    GateLine,
    PayLine,
    PostLine,
    SellLine,
    Step,
    TapLine,
    TimeStopLine,
    WristbandLine,
    parse_input,
)
from controller.rules.tabs import authorize_posting
from entrada.protocol import (
    EntitlementData,
    PaymentData,
    PeerPassage,
    PostingData,
    TimeStopData,
    WristbandData,
)

#: Wording of the simulator's own explanation keys (the engine's are in ``explain.EN``).
SIM_EN: Mapping[str, str] = {
    "sim.wristband": "Wristband {status}, {assurance}, deposit {deposit} {currency}",
    "sim.wristband.limit": (
        "Wristband {status}, {assurance}, deposit {deposit} {currency}, "
        "tab limit {limit} {currency}"
    ),
    "sim.sold": "Sold {tariff} ({concession}) for {price} {currency}",
    "sim.sold.pay_at_exit": "Sold {tariff} ({concession}): the price is charged at exit",
    "sim.sold.unknown_tariff": "Sold {tariff}: these rules have no such tariff",
    "sim.paid": "Paid {amount} {currency}",
    "sim.time_stop": "Stay clock stopped at the kiosk",
}

#: Wording by language for ``--lang``.
TEMPLATES: Mapping[str, Mapping[str, str]] = {"en": {**EN, **SIM_EN}}


# --------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Result:
    """What one input line did. ``decision`` is the engine's, for taps and postings;
    ``amount_minor`` is a sale's price, a payment, or a posting asked for."""

    line: int
    at: datetime
    action: str
    uid: str
    explanation: Explanation
    gate: str | None = None
    decision: Decision | None = None
    amount_minor: int = 0


@dataclass(frozen=True)
class Summary:
    taps: int = 0
    granted: int = 0
    denied: Mapping[str, int] = field(default_factory=dict)  # code -> taps
    postings: int = 0
    postings_refused: Mapping[str, int] = field(default_factory=dict)
    charged_minor: int = 0  # new money owed: postings, inner stays, final-exit charges
    charged_by_code: Mapping[str, int] = field(default_factory=dict)
    paid_minor: int = 0
    sold: int = 0
    sales_minor: int = 0
    deposit_applied_minor: int = 0
    deposit_refunded_minor: int = 0
    owing_refusals: int = 0  # final exits refused until paid
    inside_at_end: int = 0


@dataclass(frozen=True)
class Simulation:
    site: Site
    results: tuple[Result, ...]
    summary: Summary


@dataclass
class _Band:
    row: WristbandData | None = None
    entitlements: list[tuple[str, EntitlementData]] = field(default_factory=list)
    passages: list[PeerPassage] = field(default_factory=list)
    postings: list[tuple[str, PostingData]] = field(default_factory=list)
    payments: list[tuple[str, PaymentData]] = field(default_factory=list)
    timestops: list[TimeStopData] = field(default_factory=list)

    def record(self, uid: str) -> WristbandRecord:
        return WristbandRecord(
            uid,
            self.row,
            tuple(self.entitlements),
            tuple(self.passages),
            tuple(self.postings),
            tuple(self.payments),
            tuple(self.timestops),
        )


class _Run:
    def __init__(self, site: Site, gates: Mapping[str, Gate]) -> None:
        self.site, self.gates = site, gates
        self.bands: dict[str, _Band] = {}
        self.where: dict[str, str | None] = {}  # uid -> innermost zone (None: outside)
        self.charged: Counter[str] = Counter()
        self.credits: Counter[str] = Counter()

    def money(self, prefix: str, amount: int) -> dict[str, str | int]:
        money = Money(amount, self.site.currency)
        return {"currency": self.site.currency, **money_params(prefix, money)}

    def band(self, uid: str) -> _Band:
        return self.bands.setdefault(uid, _Band())

    def step(self, s: Step) -> Result:
        handler = getattr(self, s.action)
        result: Result = handler(s.line, s.key, s.data)
        return result

    def wristband(self, line: int, _key: str, d: WristbandLine) -> Result:
        band = self.band(d.wristband)
        row = band.row = d.apply(band.row)
        values: dict[str, str | int] = {"status": row.status, "assurance": row.assurance}
        values |= self.money("deposit", row.deposit_minor)
        key = "sim.wristband"
        if row.tab_limit_minor is not None:
            key, values = "sim.wristband.limit", values | self.money("limit", row.tab_limit_minor)
        return Result(line, d.at, "wristband", d.wristband, Explanation(key, params(**values)))

    def sell(self, line: int, key: str, d: SellLine) -> Result:
        band = self.band(d.sell)
        band.row = band.row or WristbandData.model_validate({})
        fields = d.model_dump(include=set(EntitlementData.model_fields) - {"uid", "tariff_id"})
        band.entitlements.append((key, EntitlementData(uid=d.sell, tariff_id=d.tariff, **fields)))
        tariff = self.site.tariffs.get(d.tariff)
        names: dict[str, str | int] = {"tariff": d.tariff, "concession": d.concession}
        price = 0
        if tariff is None:
            what = "sim.sold.unknown_tariff"
        elif tariff.pay_at_exit:
            what = "sim.sold.pay_at_exit"
        else:
            what = "sim.sold"
            price = quote_entry(tariff, Concession(d.concession), d.at, self.site).amount_minor
            names |= self.money("price", price)
        explanation = Explanation(what, params(**names))
        return Result(line, d.at, "sell", d.sell, explanation, amount_minor=price)

    def tap(self, line: int, _key: str, d: TapLine) -> Result:
        gate = self.gates[d.gate]
        band = self.bands.get(d.tap, _Band())
        inside = Counter(zone for zone in self.where.values() if zone is not None)
        inputs = assemble(
            band.record(d.tap),
            self.site,
            gate,
            d.at,
            occupancy=occupancy_of(self.site, inside),
            minutes_offline=d.offline_minutes,
        )
        decision = inputs.decide()
        if decision.allowed:
            at, passage_id = d.at.timestamp(), f"{line:032x}"
            passage = recorded_passage(decision, d.tap, gate, gate.id, at, passage_id)
            self.band(d.tap).passages.append(passage)
            self.where[d.tap] = passage.zone_to
            self.account(gate, decision)
        return Result(line, d.at, "tap", d.tap, decision.explanation, gate.id, decision)

    def account(self, gate: Gate, decision: Decision) -> None:
        """Charges counted once: an inner exit's go to the tab; a final exit's tab lines
        were counted when posted."""
        final = gate.direction is Direction.OUT and gate.zone_to is None
        for line in decision.charges:
            if decision.post_to_tab or (final and line.code is not ChargeCode.TAB):
                self.charged[str(line.code)] += line.amount_minor
        for line in decision.credits:
            self.credits[str(line.code)] += line.amount_minor

    def post(self, line: int, key: str, d: PostLine) -> Result:
        band = self.bands.get(d.post, _Band())
        tab = Entitlements((), tab_of(band.record(d.post)))
        cred = credential(d.post, band.row)
        decision = authorize_posting(cred, tab, d.amount_minor, self.site, d.at, ref=key)
        if decision.allowed:
            row = PostingData(
                uid=d.post,
                amount_minor=d.amount_minor,
                description=d.description,
                ts=d.at.timestamp(),
            )
            self.band(d.post).postings.append((key, row))
            self.charged[str(ChargeCode.TAB)] += d.amount_minor
            described = params(ref=key, description=d.description or None)
            charges = tuple(replace(c, params=described) for c in decision.charges)
            decision = replace(decision, charges=charges)
        explanation = decision.explanation
        return Result(line, d.at, "post", d.post, explanation, None, decision, d.amount_minor)

    def pay(self, line: int, key: str, d: PayLine) -> Result:
        row = PaymentData(
            uid=d.pay, amount_minor=d.amount_minor, method=d.method, ts=d.at.timestamp()
        )
        self.band(d.pay).payments.append((key, row))
        explanation = Explanation("sim.paid", params(**self.money("amount", d.amount_minor)))
        return Result(line, d.at, "pay", d.pay, explanation, amount_minor=d.amount_minor)

    def timestop(self, line: int, _key: str, d: TimeStopLine) -> Result:
        self.band(d.timestop).timestops.append(TimeStopData(uid=d.timestop, at=d.at.timestamp()))
        return Result(line, d.at, "timestop", d.timestop, Explanation("sim.time_stop"))


def run(steps: list[Step], site: Site) -> Simulation:
    """Play the steps in order, as the gates, kiosks and points of sale would."""
    gates = {s.data.gate: s.data.build() for s in steps if isinstance(s.data, GateLine)}
    state = _Run(site, gates)
    results = tuple(state.step(s) for s in steps if not isinstance(s.data, GateLine))
    return Simulation(site, results, _summary(results, state))


def simulate(text: str, site: Site) -> Simulation:
    """:func:`parse_input` then :func:`run`."""
    return run(parse_input(text, site), site)


def _summary(results: tuple[Result, ...], state: _Run) -> Summary:
    taps = [r.decision for r in results if r.action == "tap" and r.decision is not None]
    posts = [r.decision for r in results if r.action == "post" and r.decision is not None]
    sales = [r for r in results if r.action == "sell"]
    return Summary(
        taps=len(taps),
        granted=sum(1 for t in taps if t.allowed),
        denied=dict(sorted(Counter(str(t.code) for t in taps if not t.allowed).items())),
        postings=len(posts),
        postings_refused=dict(sorted(Counter(str(p.code) for p in posts if not p.allowed).items())),
        charged_minor=sum(state.charged.values()),
        charged_by_code=dict(sorted(state.charged.items())),
        paid_minor=sum(r.amount_minor for r in results if r.action == "pay"),
        sold=len(sales),
        sales_minor=sum(r.amount_minor for r in sales),
        deposit_applied_minor=state.credits[str(ChargeCode.DEPOSIT_APPLIED)],
        deposit_refunded_minor=state.credits[str(ChargeCode.DEPOSIT_REFUND)],
        owing_refusals=sum(1 for t in taps if t.code is RuleCode.DENIED_OWING),
        inside_at_end=sum(1 for zone in state.where.values() if zone is not None),
    )
