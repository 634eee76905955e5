"""Reading the input of ``entrada rules simulate``: JSON Lines checked line by line.

Strict pydantic models per action (unknown keys get a "did you mean"), times read in the
site's time zone (a local time the clocks skip or show twice is an error), lines in time
order, every error reported at once by line number. The format is documented in
docs/rules.md, "Simulating a change".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo

from controller.rules.catalog_schema import parse_catalog
from controller.rules.errors import RulesError
from controller.rules.model import Direction, Gate, Site
from entrada.protocol import (
    DeviceId,
    EntityId,
    IsoDate,
    Uid,
    WristbandData,
)

#: The action keys of an input line; ``gate`` is a declaration unless another is present
#: (a tap names its gate too).
ACTIONS = ("gate", "wristband", "sell", "tap", "post", "pay", "timestop")


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
