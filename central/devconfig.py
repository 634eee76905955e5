"""The desired config of every device, held by central, versioned and signed.

A device's desired document is merged from three layers, later ones winning key by key:
the site defaults, the defaults of its role, and its own settings. Technicians change a
layer with :meth:`DesiredConfigs.set` (``entrada tech config ...``), always naming the
device version they looked at: a change made on an outdated version is refused
(:class:`ConfigConflict`), never merged silently. Every device a change covers (one
device, every device of a role, or every device of the site) gets a new version, one more
than any version it was ever given, even before it was removed and added again.

Each new version is checked before it is stored: the same shape rules the device applies
(:func:`controller.config_apply.document_problems`: local-only keys, sizes) and the device
schema for every value the document sets. Rules that combine a value with the device's own
file (its drivers, for instance) can only be judged on the device; central returns them
as warnings and the device refuses such a version with a reason.

Central's service signs each document with the site key (:meth:`desired_message`),
publishes it retained, and records what devices report (:meth:`record_reported`);
:meth:`states` is the view ``entrada tech devices`` shows.
"""

from __future__ import annotations

import logging
import sqlite3
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from central import devconfig_store as db
from controller.config_apply import deep_merge, document_problems, mask_secrets
from controller.settings import DeviceConfig, DriversSection
from entrada import config as configlib
from entrada import signing
from entrada.errors import ConfigError, EntradaError
from entrada.protocol import ConfigDesired, ConfigReported, valid_id

logger = logging.getLogger(__name__)

SITE = "site"
DEVICE = "device"
ROLE_PREFIX = "role:"


class ConfigConflict(EntradaError):
    """A change was made on a version that is no longer the device's current one."""

    def __init__(self, device: str, base: int, current: int) -> None:
        self.device, self.base, self.current = device, base, current
        super().__init__(
            f"{device} is at config version {current}, the change was made on version {base}: "
            f"look at version {current} and make the change again"
        )


class UnknownDevice(EntradaError):
    """Central has no config record of the device and does not know its role."""


class InvalidConfig(ConfigError):
    """A layer change would give a device a document it would refuse."""


@dataclass(frozen=True)
class ConfigState:
    """One device's config as ``entrada tech devices`` shows it. ``state``: ``pending``
    (the desired version is not confirmed yet), ``applied``, ``rejected``, ``rolled_back``
    (each about the desired version)."""

    device: str
    role: str
    desired_version: int
    applied_version: int
    state: str
    code: str | None
    reason: str | None
    reported_at: float | None


@dataclass(frozen=True)
class Change:
    """What :meth:`DesiredConfigs.set` did: the device's new version, every device whose
    version moved, and the rules only the device can judge (warnings)."""

    version: int
    versions: dict[str, int]
    warnings: list[str]


# ------------------------------------------------------------------ key=value pairs


def _value(text: str) -> Any:
    """A TOML value (``5``, ``1.5``, ``true``, ``"x"``, ``[1, 2]``, ``{a = 1}``), or the text
    itself when it is none (``rfid=sim``). TOML dates stay text (documents are JSON)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    try:
        signing.canonical_bytes(value)
    except (TypeError, ValueError):
        return text
    return value


def parse_assignments(pairs: Iterable[str]) -> dict[str, Any]:
    """``["gate.relay_pulse=1.5", "drivers.rfid=sim"]`` as a nested table. Nothing after
    the ``=`` (``gate.debounce=``) is None, which removes the key (``key=""`` is the empty
    text). ConfigError lists every malformed pair."""
    out: dict[str, Any] = {}
    errors = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        path = key.strip().split(".")
        if not sep or not all(part.strip() for part in path):
            errors.append(f"{pair!r}: expected key.path=value")
            continue
        node = out
        for part in path[:-1]:
            nxt = node.setdefault(part.strip(), {})
            if not isinstance(nxt, dict):
                errors.append(f"{pair!r}: {part} is set to a value already")
                break
            node = nxt
        else:
            node[path[-1].strip()] = _value(text.strip()) if text.strip() else None
    if errors:
        raise ConfigError(errors, "changes")
    return out


def _apply_changes(layer: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` laid on ``layer``; a None value removes the key; empty tables go."""
    out = dict(layer)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _apply_changes(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = _apply_changes({}, value)
        else:
            out[key] = value
        if isinstance(out.get(key), Mapping) and not out[key]:
            del out[key]
    return out


# ----------------------------------------------------------------- validation

_SIM_DRIVERS = {
    name: "sim"
    for name, field in DriversSection.model_fields.items()
    if "sim" in typing.get_args(field.annotation)
}


def _is_table(loc: tuple[Any, ...]) -> bool:
    """True when ``loc`` names the whole document or one of its tables (where a check
    that combines several values reports)."""
    model: Any = DeviceConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return False
        model = configlib._model_of(field)
        if model is None:
            return False
    return True


def judge(document: Mapping[str, Any], device: str, role: str) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` of a desired document for a device of ``role``: errors make
    the device refuse it whatever its own file says; warnings are checks that combine
    the document with that file, judged with simulated drivers standing in for it."""
    problems = document_problems(document)
    if problems is not None:
        return problems[1], []
    table = document.get("device")
    if isinstance(table, Mapping) and "role" in table:
        return ["device.role: a device's role is not a config value"], []
    stand_in = {"device": {"id": device, "site": "site", "role": role}, "drivers": _SIM_DRIVERS}
    try:
        DeviceConfig.model_validate(deep_merge(stand_in, document))
    except ValidationError as err:
        errors, warnings = [], []
        for e in err.errors():
            text = configlib._describe(DeviceConfig, e)
            if e["type"] == "value_error" and _is_table(tuple(e["loc"])):
                warnings.append(text)
            else:
                errors.append(text)
        return errors, warnings
    return [], []


# ----------------------------------------------------------------------- store


class DesiredConfigs:
    """The device config layers and versions in central's SQLite file.

    ``DesiredConfigs(path)`` opens the file itself (close it, or use ``with``);
    ``DesiredConfigs(conn)`` uses an open connection in autocommit mode. One thread per
    instance (sqlite3's rule)."""

    def __init__(self, db_or_conn: str | Path | sqlite3.Connection, *, readonly: bool = False):
        self._own = not isinstance(db_or_conn, sqlite3.Connection)
        if isinstance(db_or_conn, sqlite3.Connection):
            self._conn = db_or_conn
        else:
            self._conn = db.connect(db_or_conn, readonly=readonly)
        self.readonly = readonly
        try:
            if not readonly:
                db.create_tables(self._conn)
            self._empty = readonly and not db.has_tables(self._conn)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._own:
            self._conn.close()

    def __enter__(self) -> DesiredConfigs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def _row(self, device: str) -> tuple[str, int, dict[str, Any]]:
        row = None if self._empty else db.device_row(self._conn, device)
        if row is None:
            raise UnknownDevice(f"central has no config for device {device!r}")
        return row

    def _layer(self, scope: str) -> dict[str, Any]:
        return {} if self._empty else db.layer(self._conn, scope)

    def version(self, device: str) -> int:
        """The device's current desired version (0: none yet)."""
        row = None if self._empty else db.device_row(self._conn, device)
        return 0 if row is None else row[1]

    def merged(self, device: str) -> dict[str, Any]:
        """The device's current desired document."""
        return self._row(device)[2]

    def get(self, device: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
        """``(version, document, layers)``; ``layers`` maps ``site``, ``role:<role>`` and
        ``device`` to what each holds. Values are as stored (mask them to show them:
        :func:`controller.config_apply.mask_secrets`)."""
        role, version, document = self._row(device)
        layers = {
            SITE: self._layer(SITE),
            f"{ROLE_PREFIX}{role}": self._layer(f"{ROLE_PREFIX}{role}"),
            DEVICE: self._layer(f"device:{device}"),
        }
        return version, document, layers

    def role(self, device: str) -> str | None:
        row = None if self._empty else db.device_row(self._conn, device)
        if row is not None:
            return row[0]
        return None if self._empty else db.registry_role(self._conn, device)

    def devices(self) -> list[tuple[str, str, int]]:
        """``(device, role, version)`` of every device with a desired config."""
        if self._empty:
            return []
        return [
            (d, r, v)
            for d, r, v in self._conn.execute(
                "SELECT device, role, version FROM devcfg_devices ORDER BY device"
            )
        ]

    # ------------------------------------------------------------------ writing

    def _merge_for(self, conn: sqlite3.Connection, device: str, role: str) -> dict[str, Any]:
        doc = deep_merge(db.layer(conn, SITE), db.layer(conn, f"{ROLE_PREFIX}{role}"))
        return deep_merge(doc, db.layer(conn, f"device:{device}"))

    def add_device(self, device: str, role: str, *, now: float, by: str = "") -> int:
        """Make sure central holds a desired config for ``device`` (the service calls it
        when a device announces itself). A new device, or one whose role changed, gets a
        new version; returns the current one."""
        if not valid_id(device) or not valid_id(role):
            raise UnknownDevice(f"invalid device {device!r} or role {role!r}")
        with db.write(self._conn) as c:
            row = db.device_row(c, device)
            if row is not None and row[0] == role:
                return row[1]
            document = self._merge_for(c, device, role)
            errors, _ = judge(document, device, role)
            if errors:
                # layers are checked against the devices they cover when they change; the
                # first device of a role may still not fit the site's: it will say why
                logger.warning("device %s (%s): its layers do not fit: %s", device, role, errors)
            version = db.next_version(c, device)
            db.put_device(c, device, role, version, document, layer_name="add", by=by, now=now)
        logger.info("device config: %s (%s) at version %d", device, role, version)
        return version

    def remove_device(self, device: str, *, now: float) -> bool:
        """Forget a device's desired config and own layer (its version high-water mark and
        history stay). The service must clear its retained desired message
        (:meth:`removed_devices`). False when it was not known."""
        with db.write(self._conn) as c:
            gone = c.execute("DELETE FROM devcfg_devices WHERE device = ?", (device,)).rowcount
            c.execute("DELETE FROM devcfg_layers WHERE scope = ?", (f"device:{device}",))
            c.execute("DELETE FROM devcfg_reported WHERE device = ?", (device,))
            if gone:
                c.execute(
                    "INSERT OR REPLACE INTO devcfg_removed (device, at) VALUES (?, ?)",
                    (device, now),
                )
        return bool(gone)

    def set(
        self,
        device: str,
        changes: Mapping[str, Any] | Iterable[str],
        base_version: int,
        layer: str = DEVICE,
        *,
        now: float,
        replace: bool = False,
        by: str = "",
    ) -> Change:
        """Change one layer and give every device it covers a new version.

        ``changes``: a nested table (a None value removes a key) or ``key.path=value``
        pairs; ``replace``: the layer becomes ``changes`` (``config edit``, ``config
        apply``). ``layer``: ``device``, ``role:<role>`` (the device's role) or ``site``.
        ``base_version``: the device version the change was made on (0 for a device that
        has none yet); another one raises :class:`ConfigConflict`. Every covered device's
        new document is checked first: one invalid and nothing is written
        (:class:`InvalidConfig` lists every problem)."""
        table = (
            dict(changes)
            if isinstance(changes, Mapping)
            else parse_assignments([changes] if isinstance(changes, str) else changes)
        )
        with db.write(self._conn) as c:
            row = db.device_row(c, device)
            role = row[0] if row is not None else db.registry_role(c, device)
            current = row[1] if row is not None else 0
            if base_version != current:
                raise ConfigConflict(device, base_version, current)
            if role is None:
                raise UnknownDevice(
                    f"central does not know device {device!r}: it has never connected"
                )
            scope, covered = self._scope(c, device, role, layer)
            old = db.layer(c, scope)
            new = _apply_changes({}, table) if replace else _apply_changes(old, table)
            if row is not None and new == old:
                return Change(current, {}, [])
            db.put_layer(c, scope, new, now)
            if row is None:
                covered.append((device, role))
            errors: list[str] = []
            warnings: list[str] = []
            documents = {}
            for dev, dev_role in covered:
                documents[dev] = self._merge_for(c, dev, dev_role)
                errs, warns = judge(documents[dev], dev, dev_role)
                prefix = f"{dev}: " if len(covered) > 1 else ""
                errors += [prefix + e for e in errs]
                warnings += [prefix + w for w in warns]
            if errors:
                raise InvalidConfig(errors, f"{layer} config of {device}")
            versions = {}
            for dev, dev_role in covered:
                versions[dev] = db.next_version(c, dev)
                db.put_device(
                    c,
                    dev,
                    dev_role,
                    versions[dev],
                    documents[dev],
                    layer_name=layer,
                    by=by,
                    now=now,
                )
        logger.info(
            "device config: %s layer changed from %s; new versions %s", layer, device, versions
        )
        return Change(versions[device], versions, warnings)

    @staticmethod
    def _scope(
        c: sqlite3.Connection, device: str, role: str, layer: str
    ) -> tuple[str, list[tuple[str, str]]]:
        """The layer's row and the devices it covers."""
        if layer == DEVICE:
            known = db.device_row(c, device) is not None
            return f"device:{device}", [(device, role)] if known else []
        if layer == SITE:
            return SITE, db.devices_of(c)
        if layer.startswith(ROLE_PREFIX):
            wanted = layer[len(ROLE_PREFIX) :]
            if wanted != role:
                raise ConfigError(
                    [f"{device} is a {role}: change role:{role}, not {layer}"], "layer"
                )
            return layer, db.devices_of(c, role)
        raise ConfigError([f"unknown layer {layer!r}: device, role:<role> or site"], "layer")

    # ------------------------------------------------------------------ service

    def desired_message(self, device: str, private_key: Ed25519PrivateKey) -> ConfigDesired:
        """The device's desired config, signed with the site key (bound to the device id
        and version), ready to publish retained on its ``config/desired`` topic."""
        _role, version, document = self._row(device)
        payload = signing.config_payload(device, version, document)
        return ConfigDesired(
            device=device,
            version=version,
            document=document,
            signature=signing.sign(private_key, payload),
        )

    def unpublished(self) -> list[tuple[str, int]]:
        """``(device, version)`` whose current version is not published yet."""
        if self._empty:
            return []
        rows = self._conn.execute(
            "SELECT device, version FROM devcfg_devices WHERE version > published_version "
            "ORDER BY device"
        )
        return [(str(d), int(v)) for d, v in rows]

    def mark_published(self, device: str, version: int) -> None:
        with db.write(self._conn) as c:
            c.execute(
                "UPDATE devcfg_devices SET published_version = MAX(published_version, ?) "
                "WHERE device = ?",
                (version, device),
            )

    def removed_devices(self) -> list[str]:
        """Removed devices whose retained desired message is still to be cleared."""
        if self._empty:
            return []
        return [str(r[0]) for r in self._conn.execute("SELECT device FROM devcfg_removed")]

    def mark_cleared(self, device: str) -> None:
        with db.write(self._conn) as c:
            c.execute("DELETE FROM devcfg_removed WHERE device = ?", (device,))

    def record_reported(self, reported: ConfigReported, *, now: float) -> bool:
        """Keep a device's report (the newest by version, then time). A report of a
        version central never gave (its store was restored from an old copy) lifts the
        device's high-water mark, so its next version is newer than what it runs.
        False when the report was older than the one kept."""
        with db.write(self._conn) as c:
            row = c.execute(
                "SELECT version, ts, applied_version FROM devcfg_reported WHERE device = ?",
                (reported.device,),
            ).fetchone()
            if row is not None and (reported.version, reported.ts) < (row[0], row[1]):
                return False
            applied = row[2] if row is not None else 0
            if reported.state == "applied":
                applied = max(applied, reported.version)
            c.execute(
                "INSERT OR REPLACE INTO devcfg_reported (device, version, state, code, reason, "
                "ts, received_at, applied_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reported.device,
                    reported.version,
                    reported.state,
                    reported.code,
                    reported.reason,
                    reported.ts,
                    now,
                    applied,
                ),
            )
            db.raise_highwater(c, reported.device, reported.version)
        if reported.state != "applied":
            logger.warning(
                "device %s %s config version %d: %s %s",
                reported.device,
                reported.state,
                reported.version,
                reported.code,
                reported.reason,
            )
        return True

    def states(self) -> list[ConfigState]:
        """Desired and applied version, state and reason of every device."""
        if self._empty:
            return []
        rows = self._conn.execute(
            "SELECT d.device, d.role, d.version, r.version, r.state, r.code, r.reason, r.ts, "
            "r.applied_version FROM devcfg_devices d "
            "LEFT JOIN devcfg_reported r ON r.device = d.device ORDER BY d.device"
        )
        out = []
        for device, role, desired, rep_version, rep_state, code, reason, ts, applied in rows:
            stale = rep_version is None or rep_version < desired
            state = "pending" if stale else rep_state
            out.append(ConfigState(device, role, desired, applied or 0, state, code, reason, ts))
        return out


def shown(document: Mapping[str, Any]) -> dict[str, Any]:
    """A document as people see it: secrets masked."""
    return dict(mask_secrets(document))


def config_states(db_path: str | Path) -> list[ConfigState]:
    """For ``entrada tech devices``: open the file read-only and list config states."""
    with DesiredConfigs(db_path, readonly=True) as configs:
        return configs.states()
