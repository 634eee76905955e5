"""Config documents: TOML validated against one declared schema (a pydantic model).

A schema is a tree of :class:`Section` models. :func:`load` reports every error at once,
rejects unknown keys with a "did you mean", and :func:`show` prints the effective config
(defaults filled in) with secrets masked. :func:`reference` renders docs/config.md from the
same declaration, so the reference cannot drift from the code.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from entrada.errors import ConfigError

MASK = "********"
S = TypeVar("S", bound="Section")


class Section(BaseModel):
    """A config table. Unknown keys are errors; values are validated, never coerced from
    the wrong kind (a string is not silently a number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


def option(
    default: Any = ...,
    doc: str = "",
    *,
    unit: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
    example: Any = None,
    lax: bool = False,
) -> Any:
    """Declare an option with its documentation, unit and bounds. Values are strict (a
    string is not a number); ``lax`` lets a TOML string become a Path."""
    extra: dict[str, Any] = {}
    if unit:
        extra["unit"] = unit
    if example is not None:
        extra["example"] = example
    return Field(
        default,
        description=doc,
        ge=ge,
        le=le,
        pattern=pattern,
        strict=False if lax else None,
        json_schema_extra=extra or None,
    )


def section(model: type[S], doc: str = "") -> Any:
    """Declare a sub-table whose options all have defaults."""
    return Field(default_factory=model, description=doc)


# ---------------------------------------------------------------------------- load


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a table at ``loc`` (without its last element) accepts."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_of(field)
    return list(current.model_fields) if current is not None else []


def _model_of(field: FieldInfo) -> type[BaseModel] | None:
    ann = field.annotation
    candidates = [ann, *typing.get_args(ann)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _is_secret(model: type[BaseModel], loc: tuple[Any, ...]) -> bool:
    """True when ``loc`` names a secret option (its value never goes into a message)."""
    current: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for part in loc:
        if current is None or not isinstance(part, str):
            break
        field = current.model_fields.get(part)
        if field is None:
            return False
        current = _model_of(field)
    return field is not None and "SecretStr" in str(field.annotation)


def _describe(model: type[BaseModel], err: Any) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "<root>"
    if err["type"] == "extra_forbidden":
        known = _known_keys(model, loc)
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        tail = f" (did you mean '{hint[0]}'?)" if hint else f" (known keys: {', '.join(known)})"
        return f"{where}: unknown key{tail}"
    value = err.get("input")
    secret = _is_secret(model, loc)
    shown = "" if secret or isinstance(value, dict) or value is None else f" (got {value!r})"
    return f"{where}: {err['msg']}{shown}"


def validate(model: type[S], data: dict[str, Any], source: str = "") -> S:
    """Validate a parsed document; raise ConfigError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError([_describe(model, e) for e in err.errors()], source) from err


def load(path: str | Path, model: type[S]) -> S:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError([f"cannot read config: {err.strerror or err}"], str(path)) from err
    return loads(raw, model, str(path))


def loads(raw: bytes | str, model: type[S], source: str = "<string>") -> S:
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as err:
        raise ConfigError([f"not UTF-8: {err}"], source) from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"not valid TOML: {err}"], source) from err
    return validate(model, data, source)


# ---------------------------------------------------------------------------- show


def _plain(value: Any, mask: bool) -> Any:
    if isinstance(value, SecretStr):
        return MASK if mask else value.get_secret_value()
    if isinstance(value, BaseModel):
        return {
            k: _plain(getattr(value, k), mask)
            for k in type(value).model_fields
            if getattr(value, k) is not None
        }
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, mask) for v in value]
    return value


def as_dict(cfg: BaseModel, mask: bool = True) -> dict[str, Any]:
    """The effective config as plain data; secrets masked unless ``mask=False``."""
    return dict(_plain(cfg, mask))


def show(cfg: BaseModel, mask: bool = True) -> str:
    """The effective config as TOML (defaults filled in, secrets masked)."""
    return tomli_w.dumps(as_dict(cfg, mask))


# ----------------------------------------------------------------------- reference


def _type_name(field: FieldInfo) -> str:
    ann = field.annotation
    text = getattr(ann, "__name__", None) or str(ann)
    text = str(ann) if typing.get_args(ann) else text
    return (
        text.replace("typing.", "")
        .replace("pathlib.", "")
        .replace("pydantic.types.", "")
        .replace("NoneType", "None")
        .replace("<class '", "")
        .replace("'>", "")
        .replace(" | ", " or ")
    )


def _bounds(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
        pat = getattr(meta, "pattern", None)
        if pat:
            parts.append(f"matches `{pat}`")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return "(table)"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return MASK
    return f"`{tomli_w.dumps({'x': _plain(value, True)})[4:].strip()}`"


def reference(model: type[BaseModel], title: str, prefix: str = "") -> str:
    """Markdown reference of every option of ``model``: type, default, unit, bounds, doc."""
    lines: list[str] = []
    rows: list[str] = []
    subs: list[tuple[str, type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        sub = _model_of(field)
        if sub is not None and issubclass(sub, Section):
            subs.append((name, sub, field.description or ""))
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        unit = extra.get("unit", "")
        doc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{name}` | {_type_name(field)} | {_default(field)} | {unit} "
            f"| {_bounds(field)} | {doc} |"
        )
    if title:
        lines.append(f"## {title}\n")
    if rows:
        lines.append(f"### `[{prefix}]`\n" if prefix else "")
        if model.__doc__ and prefix:
            lines.append(" ".join(model.__doc__.split()) + "\n")
        lines.append("| option | type | default | unit | bounds | meaning |")
        lines.append("|---|---|---|---|---|---|")
        lines.extend(rows)
        lines.append("")
    for name, sub, _doc in subs:
        lines.append(reference(sub, "", f"{prefix}.{name}" if prefix else name))
    return "\n".join(line for line in lines if line is not None)
