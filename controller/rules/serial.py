"""Decision inputs and decisions as plain JSON values, for the log and for replay.

A gate logs :func:`dump_input` next to each decision; central rebuilds it with
:func:`load_input` and calls :func:`replay` (with ``minutes_offline=None`` and fresher
history, to report "admitted offline, would have been denied online: reason"). The
encoding follows the dataclasses' own fields, so nothing is lost on the way:
``load_input(dump_input(x)) == x``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from controller.rules.decision import Decision
from controller.rules.engine import decide
from controller.rules.errors import RulesInputError
from controller.rules.model import Credential, Entitlements, Gate, History, Presence, Site

SCHEMA_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class DecisionInput:
    """Every argument of :func:`~controller.rules.engine.decide`, as one value."""

    credential: Credential | None
    entitlements: Entitlements
    history: History
    presence: Presence
    site: Site
    gate: Gate
    now: datetime
    minutes_offline: float | None = None

    def decide(self) -> Decision:
        return decide(
            self.credential,
            self.entitlements,
            self.history,
            self.presence,
            self.site,
            self.gate,
            self.now,
            minutes_offline=self.minutes_offline,
        )


def to_json(value: object) -> Any:
    """A frozen input or result as JSON values (dicts, lists, strings, numbers)."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RulesInputError(f"cannot encode {value!r}")
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, ZoneInfo):
        return value.key
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        return sorted((to_json(v) for v in value), key=repr)
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    raise RulesInputError(f"cannot encode {type(value).__name__}")


def from_json(kind: Any, data: Any) -> Any:
    """The value of type ``kind`` that :func:`to_json` encoded as ``data``."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if data is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_json(arg, data)
            except (TypeError, ValueError, KeyError):
                continue
        raise RulesInputError(f"{data!r} is none of {kind}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in _list(data))
        return tuple(from_json(a, v) for a, v in zip(args, _list(data), strict=True))
    if origin is frozenset:
        return frozenset(from_json(args[0], v) for v in _list(data))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {data!r}")
        return {from_json(args[0], k): from_json(args[1], v) for k, v in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass(kind, data)
    return _scalar(kind, data)


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError(f"expected a list, got {data!r}")
    return data


def _dataclass(kind: type[T], data: Any) -> T:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {kind.__name__}, got {data!r}")
    hints = typing.get_type_hints(kind)
    names = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise RulesInputError(f"{kind.__name__}: unknown keys {sorted(unknown)}")
    return kind(**{k: from_json(hints[k], v) for k, v in data.items()})


def _scalar(kind: Any, data: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(_str(data))
    if kind is date:
        return date.fromisoformat(_str(data))
    if kind is time:
        return time.fromisoformat(_str(data))
    if kind is ZoneInfo:
        return ZoneInfo(_str(data))
    if kind is bool:
        if not isinstance(data, bool):
            raise TypeError(f"expected a bool, got {data!r}")
        return data
    if kind is int:
        if type(data) is not int:
            raise TypeError(f"expected an int, got {data!r}")
        return data
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError(f"expected a number, got {data!r}")
        return data
    if kind is str:
        return _str(data)
    raise RulesInputError(f"cannot decode {kind!r}")


def _str(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError(f"expected a string, got {data!r}")
    return data


def dump_input(inp: DecisionInput) -> dict[str, Any]:
    return {"v": SCHEMA_VERSION, **to_json(inp)}


def load_input(doc: Mapping[str, Any]) -> DecisionInput:
    if doc.get("v") != SCHEMA_VERSION:
        raise RulesInputError(f"decision input schema version {doc.get('v')!r} is not 1")
    body = {k: v for k, v in doc.items() if k != "v"}
    loaded: DecisionInput = from_json(DecisionInput, body)
    return loaded


def replay(doc: Mapping[str, Any], **fresher: Any) -> Decision:
    """Decide again from a logged input (same engine version: same decision).

    ``fresher`` replaces inputs with what central knows better, e.g.
    ``replay(doc, credential=current_row, minutes_offline=None)`` answers "admitted
    offline, would have been denied online?".
    """
    return dataclasses.replace(load_input(doc), **fresher).decide()


def dump_decision(decision: Decision) -> dict[str, Any]:
    encoded: dict[str, Any] = to_json(decision)
    return encoded


def load_decision(doc: Mapping[str, Any]) -> Decision:
    loaded: Decision = from_json(Decision, dict(doc))
    return loaded


def dump_logged_input(inp: DecisionInput) -> dict[str, Any]:
    """The input as a gate logs it with each decision: everything but the site's rules,
    which central keeps by catalog version (``catalog_version``)."""
    doc: dict[str, Any] = {"v": SCHEMA_VERSION}
    for f in dataclasses.fields(inp):
        if f.name != "site":  # not encoded at all: the rules are most of the cost
            doc[f.name] = to_json(getattr(inp, f.name))
    doc["catalog_version"] = inp.site.catalog_version
    return doc


def load_logged_input(doc: Mapping[str, Any], site: Site) -> DecisionInput:
    """A logged input (:func:`dump_logged_input`) with the rules of ``site`` put back."""
    body = {k: v for k, v in doc.items() if k != "catalog_version"}
    return load_input({**body, "site": to_json(site)})
