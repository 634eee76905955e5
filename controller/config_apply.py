"""Checking a desired config from central before the device runs it.

Central publishes a signed, versioned document per device (``config/desired``,
retained). :func:`check` is the device's pure decision about one such message: it must be
signed by the site key, bound to this device, newer than what runs, small, free of keys
only the device's own file may set (:data:`LOCAL_ONLY`), and valid against the device
schema once laid over that file. Every refusal has a stable :class:`ConfigCode` and a
reason a technician can act on; a reason never carries a secret value
(:func:`mask_reason`). When accepted, the :class:`Verdict` holds the full
:class:`~controller.settings.DeviceConfig` to run.

Applying is the runtime's job, with :class:`~controller.config_store.ConfigKeeper`:
``stage`` the version, build the new drivers, run the self-check, then ``commit`` or
``roll_back`` and publish :func:`report`. Central uses :func:`document_problems` on every
new version, so a technician cannot store a document the device would refuse for its
shape alone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, SecretStr

from controller.config_store import ConfigKeeper, FailedConfig
from controller.settings import DeviceConfig
from entrada import config as configlib
from entrada import signing
from entrada.errors import ConfigError
from entrada.protocol import ConfigDesired, ConfigReported

__all__ = [
    "LOCAL_ONLY",
    "ConfigCode",
    "ConfigKeeper",
    "FailedConfig",
    "Verdict",
    "check",
    "check_for",
    "deep_merge",
    "document_problems",
    "effective",
    "mask_reason",
    "mask_secrets",
    "report",
]

#: Keys a document from central may never hold: who the device is (its id, site and
#: role: a document must not change what a device is), where its files are, how it
#: reaches the broker (a bad one would cut the device off for good) and which key it
#: trusts (a document must not name the key that checks it).
LOCAL_ONLY: tuple[tuple[str, ...], ...] = (
    ("device", "id"),
    ("device", "site"),
    ("device", "role"),
    ("device", "data_dir"),
    ("device", "run_dir"),
    ("device", "config_key"),
    ("mqtt",),
)
#: Largest document (canonical JSON); far above any real config, far below a payload.
MAX_DOCUMENT_BYTES = 65_536
#: Longest text (key or value) in a document.
MAX_TEXT = 1024
#: Deepest nesting of tables and lists in a document.
MAX_DEPTH = 8
#: Longest reason in a report (``ConfigReported.reason``).
MAX_REASON = 2000
#: Key names whose values are secret wherever they appear.
SECRET_NAME = re.compile(r"pass(word)?|secret|token|key", re.IGNORECASE)
#: Secret values shorter than this are not searched for in reasons (they would mask
#: ordinary words and numbers, and reveal nothing by being masked).
_MIN_SECRET = 3

ReportState = Literal["applied", "rejected", "rolled_back"]


class ConfigCode(StrEnum):
    """Outcome of a desired config on the device (reports, logs and tests key on these)."""

    #: Passed every check: stage, apply, self-check.
    ACCEPTED = "config.accepted"
    #: The version that runs already (a retained message seen again): nothing to do.
    CURRENT = "config.current"
    APPLIED = "config.applied"
    #: The device has no site public key, so it can trust no document.
    REJECTED_NO_KEY = "config.rejected.no_key"
    REJECTED_UNSIGNED = "config.rejected.unsigned"
    REJECTED_BAD_SIGNATURE = "config.rejected.bad_signature"
    REJECTED_WRONG_DEVICE = "config.rejected.wrong_device"
    REJECTED_NOT_NEWER = "config.rejected.not_newer"
    REJECTED_TOO_LARGE = "config.rejected.too_large"
    REJECTED_LOCAL_ONLY = "config.rejected.local_only"
    REJECTED_SCHEMA = "config.rejected.schema"
    #: The new drivers came up but the self-check failed (e.g. the reader does not answer).
    ROLLED_BACK_SELF_CHECK = "config.rolled_back.self_check"
    #: The new config could not be put into effect (drivers failed to start).
    ROLLED_BACK_APPLY_FAILED = "config.rolled_back.apply_failed"
    #: The device restarted while applying it.
    ROLLED_BACK_INTERRUPTED = "config.rolled_back.interrupted"


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` decided. ``config`` and ``document`` are set only when
    ``accepted``; otherwise ``state`` is what to report (``applied`` for the version that
    runs already, ``rolled_back`` for a version that failed here before)."""

    code: ConfigCode | str
    reason: str
    version: int
    state: ReportState | None = None
    config: DeviceConfig | None = None
    document: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.code == ConfigCode.ACCEPTED

    def report(self, device: str, now: float) -> ConfigReported:
        """The report of a verdict that was not accepted (an accepted one is reported
        after its self-check, with :func:`report`)."""
        if self.state is None:
            raise ValueError("an accepted config is reported after it is applied")
        return report(device, self.state, self.version, self.code, self.reason, now)


def _reject(code: ConfigCode, reason: str, version: int) -> Verdict:
    return Verdict(code, reason, version, "rejected")


# ------------------------------------------------------------------ documents


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``: tables merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def _walk(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every ``(path, value)`` of nested tables and lists (list items as ``[i]``)."""
    yield path, obj
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from _walk(value, (*path, f"[{i}]"))


def _too_deep(obj: Any) -> bool:
    """Deeper than :data:`MAX_DEPTH`, without recursing (a hostile document may be deep)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
    return False


def _dotted(path: Iterable[str]) -> str:
    return ".".join(path) or "<root>"


def local_only_paths(document: Mapping[str, Any]) -> list[str]:
    """The keys of :data:`LOCAL_ONLY` that ``document`` tries to set."""
    found = []
    for path in LOCAL_ONLY:
        node: Any = document
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            found.append(".".join(path))
    return found


def document_problems(document: Any) -> tuple[ConfigCode, list[str]] | None:
    """What makes ``document`` unusable whatever file it is laid on: not a table, too
    deep, too large, overlong texts, not plain JSON, local-only keys. None when fine."""
    if not isinstance(document, Mapping):
        return ConfigCode.REJECTED_SCHEMA, ["the document is not a table"]
    if _too_deep(document):
        return ConfigCode.REJECTED_SCHEMA, [f"nested deeper than {MAX_DEPTH} levels"]
    try:
        size = len(signing.canonical_bytes(document))
    except (ValueError, TypeError, UnicodeError) as err:
        return ConfigCode.REJECTED_SCHEMA, [f"not a plain JSON document ({type(err).__name__})"]
    if size > MAX_DOCUMENT_BYTES:
        return ConfigCode.REJECTED_TOO_LARGE, [
            f"the document is {size} bytes, at most {MAX_DOCUMENT_BYTES}"
        ]
    long = []
    for path, value in _walk(document):
        if path and len(path[-1]) > MAX_TEXT:
            long.append(f"{_dotted(path[:-1])}: a key of {len(path[-1])} characters")
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            long.append(f"{_dotted(path)}: text of {len(value)} characters (at most {MAX_TEXT})")
    if long:
        return ConfigCode.REJECTED_SCHEMA, long
    local = local_only_paths(document)
    if local:
        return ConfigCode.REJECTED_LOCAL_ONLY, [
            f"{key}: only the device's own config file may set this" for key in local
        ]
    return None


def effective(bootstrap: Mapping[str, Any], document: Mapping[str, Any]) -> DeviceConfig:
    """The config to run: the device's own file with the document laid over it.
    ConfigError lists every problem."""
    return configlib.validate(DeviceConfig, deep_merge(bootstrap, document), "desired config")


def load_bootstrap(path: str | Path) -> dict[str, Any]:
    """The device's own config file as plain data (what documents are laid over)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([f"cannot read config: {err}"], str(path)) from err


# --------------------------------------------------------------------- secrets


def _secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        sub = configlib._model_of(field)
        if sub is not None:
            paths |= _secret_paths(sub, (*prefix, name))
        elif "SecretStr" in str(field.annotation):
            paths.add((*prefix, name))
    return paths


_SECRET_PATHS = _secret_paths(DeviceConfig)


def _is_secret_path(path: tuple[str, ...]) -> bool:
    return path in _SECRET_PATHS or any(SECRET_NAME.search(part) for part in path)


def secret_values(*documents: Mapping[str, Any]) -> set[str]:
    """The text of every value under a secret key (by schema or by name) in ``documents``."""
    found: set[str] = set()
    for doc in documents:
        if not isinstance(doc, Mapping) or _too_deep(doc):
            continue
        for path, value in _walk(doc):
            if not path or not _is_secret_path(path) or isinstance(value, Mapping | list):
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            text = str(value)
            if len(text) >= _MIN_SECRET:
                found.add(text)
    return found


def mask_secrets(document: Any, path: tuple[str, ...] = ()) -> Any:
    """A copy of ``document`` with every value under a secret key replaced by the mask
    (what ``entrada tech config get`` shows and logs print)."""
    if isinstance(document, Mapping):
        return {
            k: configlib.MASK
            if _is_secret_path((*path, str(k))) and not isinstance(v, Mapping)
            else mask_secrets(v, (*path, str(k)))
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [mask_secrets(v, path) for v in document]
    return document


def mask_reason(reason: str, secrets: Iterable[str] = ()) -> str:
    """``reason`` with each of ``secrets`` masked, cut to :data:`MAX_REASON` characters."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET:
            reason = reason.replace(secret, configlib.MASK)
            reason = reason.replace(repr(secret)[1:-1], configlib.MASK)
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    return reason


def _without_secret_values(error: str) -> str:
    """A schema error about a key named like a secret, without the value it quotes."""
    where = error.split(":", 1)[0]
    if _is_secret_path(tuple(where.split("."))) and " (got " in error:
        return error[: error.index(" (got ")]
    return error


def _listed(errors: list[str]) -> str:
    errors = [_without_secret_values(e) for e in errors]
    shown = [e if len(e) <= 300 else e[:299] + "…" for e in errors[:10]]
    more = f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
    return "; ".join(shown) + more


# ----------------------------------------------------------------------- check


def check(
    desired: ConfigDesired,
    public_key: Ed25519PublicKey | None,
    device_id: str,
    bootstrap: Mapping[str, Any],
    *,
    applied_version: int = 0,
    failed: FailedConfig | None = None,
) -> Verdict:
    """Decide about one desired config (pure: no IO, no clock). ``bootstrap`` is the
    device's own config file as plain data, ``applied_version`` the version that runs,
    ``failed`` the newest version rolled back here. Only a verdict that is ``accepted``
    may be applied."""
    version = desired.version
    hide = secret_values(bootstrap, desired.document)

    def reject(code: ConfigCode, reason: str) -> Verdict:
        return _reject(code, mask_reason(reason, hide), version)

    if public_key is None:
        return reject(ConfigCode.REJECTED_NO_KEY, "this device has no site signing key")
    if not desired.signature:
        return reject(ConfigCode.REJECTED_UNSIGNED, f"version {version} is not signed")
    if desired.device != device_id:
        return reject(
            ConfigCode.REJECTED_WRONG_DEVICE,
            f"version {version} is for device {desired.device!r}, this is {device_id!r}",
        )
    payload = signing.config_payload(desired.device, version, desired.document)
    if not signing.verify(public_key, payload, desired.signature):
        return reject(
            ConfigCode.REJECTED_BAD_SIGNATURE,
            f"version {version}: the signature does not match the site key",
        )
    if version == applied_version:
        return Verdict(ConfigCode.CURRENT, f"version {version} runs already", version, "applied")
    if failed is not None and version == failed.version:
        return Verdict(failed.code, failed.reason, version, "rolled_back")
    newest = max(applied_version, failed.version if failed else 0)
    if version < newest:
        return reject(
            ConfigCode.REJECTED_NOT_NEWER,
            f"version {version} is older than version {newest} already seen here",
        )
    problems = document_problems(desired.document)
    if problems is not None:
        code, errors = problems
        return reject(code, f"version {version}: {_listed(errors)}")
    try:
        config = effective(bootstrap, desired.document)
    except ConfigError as err:
        return reject(ConfigCode.REJECTED_SCHEMA, f"version {version}: {_listed(err.errors)}")
    return Verdict(
        ConfigCode.ACCEPTED,
        "",
        version,
        None,
        config=config,
        document=dict(desired.document),
    )


def check_for(
    keeper: ConfigKeeper,
    desired: ConfigDesired,
    public_key: Ed25519PublicKey | None,
    device_id: str,
    bootstrap: Mapping[str, Any],
) -> Verdict:
    """:func:`check` against what ``keeper`` holds (the version that runs, the one that
    failed)."""
    return check(
        desired,
        public_key,
        device_id,
        bootstrap,
        applied_version=keeper.applied_version,
        failed=keeper.failed,
    )


def report(
    device: str,
    state: ReportState,
    version: int,
    code: ConfigCode | str | None,
    reason: str | None,
    now: float,
    *,
    hide: Iterable[Mapping[str, Any]] = (),
) -> ConfigReported:
    """The ``config/reported`` message. ``hide``: documents whose secret values must not
    appear in the reason (pass the bootstrap and the document when the reason came from
    elsewhere, e.g. a driver error)."""
    text = mask_reason(reason or "", secret_values(*hide)) if reason else None
    return ConfigReported(
        device=device,
        version=version,
        state=state,
        code=str(code) if code is not None else None,
        reason=text or None,
        ts=now,
    )
