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

import difflib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo

from controller.rules.assemble import (
    WristbandRecord,
    assemble,
    credential,
    occupancy_of,
    recorded_passage,
    tab_of,
)
from controller.rules.billing import quote_entry
from controller.rules.catalog_schema import parse_catalog
from controller.rules.codes import ChargeCode, RuleCode
from controller.rules.decision import Decision, Explanation, money_params, params
from controller.rules.errors import RulesError
from controller.rules.explain import EN
from controller.rules.model import Concession, Direction, Entitlements, Gate, Site
from controller.rules.money import Money
from controller.rules.tabs import authorize_posting
from entrada.protocol import (
    DeviceId,
    EntitlementData,
    EntityId,
    IsoDate,
    PaymentData,
    PeerPassage,
    PostingData,
    TimeStopData,
    Uid,
    WristbandData,
)

#: The action keys of an input line; ``gate`` is a declaration unless another is present
#: (a tap names its gate too).
ACTIONS = ("gate", "wristband", "sell", "tap", "post", "pay", "timestop")

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


class SimulationInputError(RulesError):
    """The simulation input is invalid; ``errors`` lists every problem, by line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} input error(s):\n{lines}")


# ------------------------------------------------------------------------------- times

_AT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def local_instant(naive: datetime, tz: ZoneInfo) -> datetime:
    """A site-local wall-clock time as a UTC instant; a time the clocks skip, or one they
    show twice (the autumn change), is an error (``ValueError``): give an offset."""
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    wall = f"{naive:%Y-%m-%d %H:%M}"
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{wall} does not exist in {tz.key} (the clocks skip it): give the offset")
    raise ValueError(
        f"{wall} happens twice in {tz.key} (the clocks go back): give the offset, "
        f"{first.isoformat(timespec='minutes')} or {second.isoformat(timespec='minutes')}"
    )


def _parse_at(value: object, info: ValidationInfo) -> datetime:
    if not isinstance(value, str) or not _AT.match(value):
        raise ValueError(
            f"a time is 'YYYY-MM-DDTHH:MM[:SS]', with an offset or site-local, got {value!r}"
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"not a real time: {value!r}") from err
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    tz = (info.context or {}).get("tz")
    if not isinstance(tz, ZoneInfo):
        raise ValueError("a time without an offset needs the site's time zone")
    return local_instant(parsed, tz)


At = Annotated[datetime, BeforeValidator(_parse_at)]
Amount = Annotated[int, Field(gt=0, le=10**12)]


# ------------------------------------------------------------------------- input lines


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class GateLine(_Line):
    """Declares a gate: where it stands in the zone tree and which way it lets people."""

    gate: DeviceId
    zone_from: EntityId | None = None
    zone_to: EntityId | None = None
    direction: Literal["in", "out"]
    collects_media: bool = False
    at: At | None = None

    def build(self) -> Gate:
        return Gate(
            self.gate, self.zone_from, self.zone_to, Direction(self.direction), self.collects_media
        )


class WristbandLine(_Line):
    """Adds a wristband, or changes the fields given of one already known."""

    at: At
    wristband: Uid
    status: Literal["active", "blocked", "lost", "expired"] = "active"
    holder: str | None = Field(None, max_length=200)
    valid_until: At | None = None
    assurance: Literal["secure", "uid_only"] = "secure"
    deposit_minor: Annotated[int, Field(ge=0, le=10**12)] = 0
    tab_limit_minor: Annotated[int, Field(ge=0, le=10**12)] | None = None

    def apply(self, old: WristbandData | None) -> WristbandData:
        fields: dict[str, Any] = old.model_dump() if old is not None else {}
        for name in self.model_fields_set - {"at", "wristband"}:
            fields[name] = getattr(self, name)
        if "valid_until" in self.model_fields_set:
            fields["valid_until"] = (
                None if self.valid_until is None else self.valid_until.timestamp()
            )
        return WristbandData.model_validate(fields)


class SellLine(_Line):
    """Gives a wristband an entitlement (a ticket or a pass), with an optional baseline."""

    at: At
    sell: Uid
    tariff: EntityId
    concession: Literal["adult", "child", "senior", "student", "disabled"] = "adult"
    id: EntityId | None = None
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    entries_used: int = Field(0, ge=0, le=1_000_000)
    first_used: IsoDate | None = None
    days_used: list[IsoDate] = Field(default_factory=list, max_length=3660)


class TapLine(_Line):
    """A wristband presented at a gate."""

    at: At
    tap: Uid
    gate: DeviceId
    offline_minutes: float = Field(0, ge=0, le=366 * 24 * 60)


class PostLine(_Line):
    """A point of sale asks to post a charge to the wristband's tab."""

    at: At
    post: Uid
    amount_minor: Amount
    description: str = Field("", max_length=200)
    ref: EntityId | None = None


class PayLine(_Line):
    """Money paid towards the visit (at a kiosk or a cashier)."""

    at: At
    pay: Uid
    amount_minor: Amount
    method: str = Field("", max_length=32)


class TimeStopLine(_Line):
    """A tap at a kiosk: the stay clock stops for the tariff's ``time_stop_minutes``."""

    at: At
    timestop: Uid


_MODELS: Mapping[str, type[_Line]] = {
    "gate": GateLine,
    "wristband": WristbandLine,
    "sell": SellLine,
    "tap": TapLine,
    "post": PostLine,
    "pay": PayLine,
    "timestop": TimeStopLine,
}


@dataclass(frozen=True)
class Step:
    """One parsed input line (``key``: the entitlement id, posting ref or payment ref)."""

    line: int
    action: str
    data: _Line
    key: str = ""


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validation_errors(n: int, err: ValidationError, model: type[_Line]) -> list[str]:
    errors = []
    for e in err.errors(include_url=False):
        where = ".".join(str(part) for part in e["loc"]) or "(line)"
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            hint = _close(key, list(model.model_fields)) or _close(key, list(ACTIONS))
            errors.append(f"line {n}: {where}: unknown key{hint}")
        elif e["type"] == "missing":
            errors.append(f"line {n}: {where}: missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            given = e.get("input")
            if isinstance(given, str | int | float) and repr(given) not in msg:
                msg += f", got {given!r}"
            errors.append(f"line {n}: {where}: {msg}")
    return errors


def _action_of(n: int, obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The line's action, or why it has none."""
    found = [k for k in ACTIONS[1:] if k in obj]
    if len(found) > 1:
        return None, f"line {n}: more than one action ({', '.join(found)}): one per line"
    if found:
        return found[0], None
    for key in (k for k in obj if k not in GateLine.model_fields):
        hint = _close(str(key), list(ACTIONS))
        if hint:
            return None, f"line {n}: unknown action {key!r}{hint}"
    if "gate" in obj:
        return "gate", None
    return None, f"line {n}: no action: a line has one of {', '.join(ACTIONS)}"


def _read_lines(text: str, site: Site) -> tuple[list[Step], list[str]]:
    steps: list[Step] = []
    errors: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as err:
            errors.append(f"line {n}: not JSON: {err.msg} at column {err.colno}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"line {n}: expected a JSON object {{...}}")
            continue
        action, problem = _action_of(n, obj)
        if action is None:
            errors.append(problem or f"line {n}: no action")
            continue
        model = _MODELS[action]
        try:
            data = model.model_validate(obj, context={"tz": site.tz})
        except ValidationError as err:
            errors.extend(_validation_errors(n, err, model))
            continue
        steps.append(Step(n, action, data))
    return steps, errors


def _gate_errors(n: int, line: GateLine, site: Site) -> list[str]:
    zones = list(site.zones.zones)
    errors = [
        f"line {n}: {name}: unknown zone {zone!r}{_close(zone, zones)}"
        for name, zone in (("zone_from", line.zone_from), ("zone_to", line.zone_to))
        if zone is not None and zone not in site.zones.zones
    ]
    if errors:
        return errors
    inner, outer = (
        (line.zone_to, line.zone_from) if line.direction == "in" else (line.zone_from, line.zone_to)
    )
    if inner is None or inner == outer or outer not in (None, *site.zones.path(inner)[:-1]):
        return [
            f"line {n}: gate {line.gate!r}: {line.direction} from {line.zone_from!r} to "
            f"{line.zone_to!r} does not go from a zone to one of its ancestors or back"
        ]
    return []


def _cross_check(steps: list[Step], site: Site) -> tuple[list[Step], list[str]]:
    """Gates, references, unique ids, time order; fills in the generated ids."""
    errors: list[str] = []
    gates: dict[str, int] = {}
    for s in steps:
        if isinstance(s.data, GateLine):
            if s.data.gate in gates:
                errors.append(
                    f"line {s.line}: gate {s.data.gate!r} is already declared on line "
                    f"{gates[s.data.gate]}"
                )
            gates.setdefault(s.data.gate, s.line)
            errors.extend(_gate_errors(s.line, s.data, site))
    keys: dict[str, dict[str, int]] = {"sell": {}, "post": {}}
    last: tuple[int, datetime] | None = None
    out: list[Step] = []
    for s in steps:
        d, key = s.data, ""
        if isinstance(d, TapLine) and d.gate not in gates:
            errors.append(
                f"line {s.line}: gate: no gate {d.gate!r} is declared{_close(d.gate, list(gates))}"
            )
        if isinstance(d, SellLine):
            key = d.id or f"L{s.line:06d}"
            if d.valid_from and d.valid_to and d.valid_from > d.valid_to:
                errors.append(f"line {s.line}: valid_to: before valid_from")
        elif isinstance(d, PostLine):
            key = d.ref or f"L{s.line:06d}"
        elif isinstance(d, PayLine):
            key = f"L{s.line:06d}"
        if s.action in keys and key:
            seen = keys[s.action]
            if key in seen:
                what = "id" if s.action == "sell" else "ref"
                errors.append(f"line {s.line}: {what}: {key!r} is already used on line {seen[key]}")
            seen.setdefault(key, s.line)
        at: datetime | None = getattr(d, "at", None)
        if at is not None:
            if last is not None and at < last[1]:
                errors.append(
                    f"line {s.line}: at: {at.astimezone(site.tz).isoformat()} is earlier than "
                    f"line {last[0]} ({last[1].astimezone(site.tz).isoformat()}): "
                    "lines go in time order"
                )
            last = (s.line, at)
        out.append(Step(s.line, s.action, d, key))
    return out, errors


def parse_input(text: str, site: Site) -> list[Step]:
    """The input lines as steps, or :class:`SimulationInputError` with every problem."""
    steps, errors = _read_lines(text, site)
    steps, more = _cross_check(steps, site)
    errors += more
    if errors:
        raise SimulationInputError(sorted(errors, key=_line_number))
    return steps


def _line_number(error: str) -> int:
    match = re.match(r"line (\d+):", error)
    return int(match[1]) if match else 0


def parse_rules(document: Mapping[str, Any]) -> Site:
    """A rules document (as published, ``version`` optional: 0) as the engine's
    :class:`Site`; :class:`CatalogError` lists every problem."""
    return parse_catalog({"version": 0, **document})


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
