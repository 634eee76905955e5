"""``entrada tech config``: read and change a device's desired config, through central.

- ``config get DEVICE [--json]``: the desired version, each effective key with the layer
  it comes from (site, role, device), and what the device last reported;
- ``config set DEVICE key.path=value ... --base VERSION [--layer L]`` (``key.path=``
  with nothing after the ``=`` removes the key from the layer);
- ``config edit DEVICE [--layer L]``: the layer in ``$EDITOR`` as TOML, then set with the
  version read before editing;
- ``config apply DEVICE FILE.toml --base VERSION [--layer L]``: the layer becomes the file.

``--layer`` is ``device`` (default), ``role:<role>`` (the device's role) or ``site``.
Every change names the version it was made on (``--base``; ``edit`` reads it itself): if
the device has moved on since, the change is refused, not merged. The commands write
central's store directly (WAL; the running service notices the new version, signs it and
publishes it). Secret values are never printed: they show masked, and a masked value
left as it is in an edit keeps the stored secret.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from entrada.config import MASK
from entrada.errors import ConfigError, EntradaError

EXIT_CONFIG = 2


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _warn(line: str) -> None:
    sys.stderr.write(line + "\n")


def _db(args: argparse.Namespace) -> Path:
    from central.service import db_path, load_central_config

    return db_path(load_central_config(args.config))


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


# ------------------------------------------------------------------ showing


def _toml_value(value: Any) -> str:
    """A value as it would be written after ``key.path=`` on the command line."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].strip()


def _flat(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, path + "."))
        else:
            out[path] = value
    return out


def config_lines(
    device: str, version: int, document: dict[str, Any], layers: dict[str, Any], state: Any
) -> list[str]:
    """The text of ``config get`` (values already masked)."""
    role = next((k.split(":", 1)[1] for k in layers if k.startswith("role:")), "?")
    head = f"{device} ({role}): desired version {version}"
    if state is not None:
        head += f"; applied {state.applied_version or '-'}, {state.state}"
        if state.state != "applied" and (state.code or state.reason):
            head += f" [{state.code or '-'}] {state.reason or ''}".rstrip()
    lines = [head]
    source: dict[str, str] = {}
    for name in layers:  # site, role, device: later ones win
        for key in _flat(layers[name]):
            source[key] = name
    flat = _flat(document)
    if not flat:
        lines.append("(nothing set: the device runs its own config file)")
    pairs = {key: f"{key} = {_toml_value(value)}" for key, value in sorted(flat.items())}
    width = max((len(p) for p in pairs.values()), default=0) + 2
    for key, pair in pairs.items():
        lines.append(f"{pair:<{width}}# {source.get(key, '?')}")
    return lines


def _cmd_get(args: argparse.Namespace) -> int:
    from central.devconfig import DesiredConfigs, shown

    with DesiredConfigs(_db(args), readonly=True) as configs:
        version, document, layers = configs.get(args.device)
        state = next((s for s in configs.states() if s.device == args.device), None)
    document = shown(document)
    layers = {name: shown(layer) for name, layer in layers.items()}
    if args.json:
        out = {
            "device": args.device,
            "version": version,
            "document": document,
            "layers": layers,
            "state": None
            if state is None
            else {
                "desired_version": state.desired_version,
                "applied_version": state.applied_version,
                "state": state.state,
                "code": state.code,
                "reason": state.reason,
                "reported_at": state.reported_at,
            },
        }
        _write(json.dumps(out, ensure_ascii=False, sort_keys=True))
        return 0
    for line in config_lines(args.device, version, document, layers, state):
        _write(line)
    return 0


# ------------------------------------------------------------------ changing


def _restore_masked(new: Any, old: Any) -> Any:
    """``new`` with every masked value put back to the stored one at the same key (a
    person editing never sees a secret, and leaving it masked keeps it)."""
    if isinstance(new, dict):
        previous = old if isinstance(old, Mapping) else {}
        return {k: _restore_masked(v, previous.get(k)) for k, v in new.items()}
    if new == MASK and old is not None and not isinstance(old, Mapping):
        return old
    return new


def _layer_of(layers: dict[str, Any], layer: str) -> dict[str, Any]:
    if layer.startswith("role:"):
        return next((v for k, v in layers.items() if k == layer), {})
    return dict(layers.get(layer, {}))


def _changed(args: argparse.Namespace, change: Any) -> int:
    _write(f"{args.device}: config version {change.version}")
    others = {d: v for d, v in change.versions.items() if d != args.device}
    if others:
        _write("also: " + ", ".join(f"{d} {v}" for d, v in sorted(others.items())))
    for warning in change.warnings:
        _warn(f"warning: {warning} (the device checks this against its own file)")
    return 0


def _cmd_set(args: argparse.Namespace) -> int:
    from central.devconfig import DesiredConfigs, parse_assignments

    changes = parse_assignments(args.pairs)
    with DesiredConfigs(_db(args)) as configs:
        if configs.version(args.device):
            old = _layer_of(configs.get(args.device)[2], args.layer)
            changes = _restore_masked(changes, old)
        change = configs.set(
            args.device, changes, args.base, args.layer, now=time.time(), by=_user()
        )
    return _changed(args, change)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([f"cannot read: {err}"], str(path)) from err


def _replace(args: argparse.Namespace, document: dict[str, Any], base: int) -> Any:
    from central.devconfig import DesiredConfigs

    with DesiredConfigs(_db(args)) as configs:
        old: dict[str, Any] = {}
        if configs.version(args.device):
            old = _layer_of(configs.get(args.device)[2], args.layer)
        return configs.set(
            args.device,
            _restore_masked(document, old),
            base,
            args.layer,
            now=time.time(),
            replace=True,
            by=_user(),
        )


def _cmd_apply(args: argparse.Namespace) -> int:
    document = _read_toml(Path(args.file))
    return _changed(args, _replace(args, document, args.base))


def _cmd_edit(args: argparse.Namespace) -> int:
    from central.devconfig import DesiredConfigs, shown

    with DesiredConfigs(_db(args), readonly=True) as configs:
        version, document, layers = configs.get(args.device)
    layer = shown(_layer_of(layers, args.layer))
    effective = config_lines(args.device, version, shown(document), layers, None)[1:]
    text = (
        f"# entrada tech config edit {args.device}: the {args.layer} layer, on version "
        f"{version}.\n# Saved as it is here; keys removed here are removed. Values shown "
        f"{MASK} keep their secret.\n# Effective now (key = value  # layer):\n"
        + "".join(f"#   {line}\n" for line in effective)
        + "\n"
        + tomli_w.dumps(layer)
    )
    fd, name = tempfile.mkstemp(prefix=f"entrada-{args.device}-", suffix=".toml")
    path = Path(name)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)
    except OSError as err:
        path.unlink()
        raise EntradaError(f"cannot start the editor {editor!r}: {err}") from err
    if done.returncode != 0:
        path.unlink()
        _warn(f"entrada: the editor exited with {done.returncode}; nothing changed")
        return 1
    if path.read_text(encoding="utf-8") == text:
        path.unlink()
        _write(f"{args.device}: no change (version {version})")
        return 0
    try:
        change = _replace(args, _read_toml(path), version)
    except EntradaError:
        _warn(
            f"entrada: your edit is kept in {path}; after fixing it: entrada tech config apply "
            f"{args.device} {path} --base {version} --layer {args.layer} --config {args.config}"
        )
        raise
    path.unlink()
    return _changed(args, change)


# ------------------------------------------------------------------ parser


def _layer(text: str) -> str:
    if text in ("device", "site") or (text.startswith("role:") and len(text) > 5):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: device, role:<role> or site")


def register(tech_subparsers: Any) -> None:
    """Add ``config get|set|edit|apply`` under ``entrada tech``."""
    cfg = tech_subparsers.add_parser(
        "config", help="a device's desired config (changed through central)"
    )
    csub = cfg.add_subparsers(dest="config_action", required=True)

    def leaf(name: str, helptext: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = csub.add_parser(name, help=helptext)
        p.add_argument("device")
        p.add_argument("--config", required=True, help="central config file")
        return p

    def layer_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--layer",
            type=_layer,
            default="device",
            help="device (default), role:<role> or site",
        )

    get = leaf("get", "desired version, effective keys and their layers, last report")
    get.add_argument("--json", action="store_true", help="one JSON document")
    get.set_defaults(func=_cmd_get)

    set_ = leaf("set", "change keys of one layer")
    set_.add_argument(
        "pairs",
        nargs="+",
        metavar="key.path=value",
        help='a TOML value (text may go unquoted); "key.path=" removes the key',
    )
    set_.add_argument("--base", type=int, required=True, help="the version the change is on")
    layer_option(set_)
    set_.set_defaults(func=_cmd_set)

    edit = leaf("edit", "edit one layer in $EDITOR")
    layer_option(edit)
    edit.set_defaults(func=_cmd_edit)

    apply = leaf("apply", "replace one layer with a TOML file")
    apply.add_argument("file", metavar="FILE.toml")
    apply.add_argument("--base", type=int, required=True, help="the version the change is on")
    layer_option(apply)
    apply.set_defaults(func=_cmd_apply)


def main(argv: list[str] | None = None) -> int:
    """Run these commands alone (for tests): ``main(["tech", "config", "get", ...])``."""
    from central.devconfig import ConfigConflict

    parser = argparse.ArgumentParser(prog="entrada")
    sub = parser.add_subparsers(dest="command", required=True)
    tech = sub.add_parser("tech")
    register(tech.add_subparsers(dest="tech_command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        _warn(str(err))
        return EXIT_CONFIG
    except ConfigConflict as err:
        _warn(f"entrada: refused: {err}")
        return 1
    except EntradaError as err:
        _warn(f"entrada: {err}")
        return 1
