"""``entrada wristband history`` and ``entrada conflicts``: what central knows, for people.

- ``entrada wristband history UID --config CENTRAL.toml [--json]``: every entry, exit,
  zone move, denial, charge, posting, payment and time-stop of a wristband, one line each
  in the site's time zone, then its entitlements and totals (the view a manager answers
  a dispute from; ``--json`` prints :meth:`central.history.WristbandHistory.as_dict`);
- ``entrada conflicts --config CENTRAL.toml [--since WHEN] [--json]``: the offline
  decisions central's replay disagrees with (and those it could not replay).

Both open the store read-only, so they work while the service runs. Words are made here,
from the stable codes (``controller.rules.explain``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from entrada.cli_alone import run_alone

EXIT_CONFIG = 2


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _when(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def _since(text: str) -> float:
    """Unix seconds, or an ISO 8601 date or date-time with a UTC offset."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is neither Unix seconds nor ISO 8601") from err
    if when.tzinfo is None:
        if len(text) != 10:  # a bare date is taken as UTC midnight; a bare time is not guessed
            raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. {text}+01:00")
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _money(amount: int | None, currency: str | None) -> str:
    from controller.rules.money import format_minor

    if amount is None:
        return ""
    return f"{format_minor(amount, currency)} {currency}" if currency else f"{amount} (minor)"


def _zones(item: dict[str, Any]) -> str:
    if item["zone_from"] is None and item["zone_to"] is None:
        return ""
    return f"{item['zone_from'] or 'outside'} -> {item['zone_to'] or 'outside'}"


def _words(explanation: dict[str, Any] | None) -> str:
    from controller.rules.explain import EN

    if not explanation or explanation.get("key") not in EN:
        return ""
    try:
        return EN[explanation["key"]].format_map(explanation.get("params") or {})
    except (KeyError, ValueError, IndexError):
        return ""


def history_lines(doc: dict[str, Any]) -> list[str]:
    """The text of ``entrada wristband history`` for a history document."""
    tz = ZoneInfo(doc["timezone"]) if doc["timezone"] else ZoneInfo("UTC")
    totals = doc["totals"]
    currency = totals["currency"]
    band = doc["wristband"]
    if band is None:
        head = f"wristband {doc['uid']}: not in the catalog"
    else:
        extra = [band["status"], band["assurance"]]
        if band["holder"]:
            extra.append(f"holder {band['holder']}")
        if band["deposit_minor"]:
            extra.append(f"deposit {_money(band['deposit_minor'], currency)}")
        if band["tab_limit_minor"] is not None:
            extra.append(f"tab limit {_money(band['tab_limit_minor'], currency)}")
        head = f"wristband {doc['uid']}: {', '.join(extra)}"
    lines = [head]
    for ent in doc["entitlements"]:
        valid = f" valid {ent['valid_from'] or '…'} to {ent['valid_to'] or '…'}"
        lines.append(
            f"  entitlement {ent['id']}: {ent['tariff_name'] or ent['tariff_id']} "
            f"({ent['concession']}), {ent['entries_used']} entries used"
            + (valid if ent["valid_from"] or ent["valid_to"] else "")
        )
    lines.append(f"times in {tz.key}")
    for item in doc["items"]:
        notes = [n for n in (_words(item["explanation"]), item["description"]) if n]
        if item["offline"]:
            notes.append("offline")
        line = (
            f"{_when(item['at'], tz)}  {item['kind']:<14} {item['gate'] or '-':<12} "
            f"{_zones(item):<24} {item['code'] or '-':<24} "
            f"{_money(item['amount_minor'], item['currency']):>12}"
        )
        lines.append((line + (f"  {'; '.join(notes)}" if notes else "")).rstrip())
    if not doc["items"]:
        lines.append("(nothing recorded)")
    lines.append(
        "totals: "
        + ", ".join(
            f"{name} {_money(totals[f'{name}_minor'], currency)}"
            for name in ("charged", "posted", "paid", "refunded", "settled", "balance")
        )
    )
    lines += [f"unreadable: {u}" for u in doc["unreadable"]]
    return lines


def _store(args: argparse.Namespace) -> Any:
    from central.service import db_path, load_central_config
    from central.sqlite_store import SqliteStorage

    return SqliteStorage(db_path(load_central_config(args.config)), readonly=True)


def _cmd_history(args: argparse.Namespace) -> int:
    from pydantic import TypeAdapter, ValidationError

    from central.admin import normalise_uid
    from central.history import wristband_history
    from entrada.protocol import Uid

    try:
        uid = TypeAdapter(Uid).validate_python(normalise_uid(args.uid))
    except ValidationError:
        sys.stderr.write(f"entrada: uid {args.uid!r} is not 8 to 20 hexadecimal digits\n")
        return 2
    with _store(args) as store:
        found = wristband_history(store, uid)
    if not found.known:
        sys.stderr.write(f"entrada: wristband {uid} is not known to central\n")
        return 1
    doc = found.as_dict()
    if args.json:
        _write(json.dumps(doc, ensure_ascii=False))
    else:
        for line in history_lines(doc):
            _write(line)
    return 0


def _cmd_conflicts(args: argparse.Namespace) -> int:
    from central.history import site_at
    from central.replay import conflicts, describe
    from controller.rules.errors import CatalogError

    with _store(args) as store:
        found = conflicts(store, args.since)
        try:
            site = site_at(store)
        except CatalogError:
            site = None
    if args.json:
        rows = [{**c.as_dict(), "sentence": describe(c)} for c in found]
        _write(json.dumps({"conflicts": rows}, ensure_ascii=False))
        return 0
    tz = site.tz if site is not None else ZoneInfo("UTC")
    if not found:
        _write("no conflicts")
        return 0
    _write(f"times in {tz.key}")
    for c in found:
        _write(f"{_when(c.at, tz)}  {c.device:<12} {c.uid or '-':<20} {describe(c)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``wristband history`` and ``conflicts`` to ``entrada``'s subcommands."""
    wb = subparsers.add_parser("wristband", help="what central knows about a wristband")
    wsub = wb.add_subparsers(dest="action", required=True)
    hist = wsub.add_parser("history", help="every passage, denial, charge and payment")
    hist.add_argument("uid")
    hist.add_argument("--config", required=True, help="central config file")
    hist.add_argument("--json", action="store_true", help="one JSON document")
    hist.set_defaults(func=_cmd_history)

    conf = subparsers.add_parser(
        "conflicts", help="offline decisions that central's replay decides otherwise"
    )
    conf.add_argument("--config", required=True, help="central config file")
    conf.add_argument(
        "--since", type=_since, help="decisions from then on (Unix s, or ISO 8601 with offset)"
    )
    conf.add_argument("--json", action="store_true", help="one JSON document")
    conf.set_defaults(func=_cmd_conflicts)


def main(argv: list[str] | None = None) -> int:
    """Run these commands alone (for tests): ``main(["conflicts", "--config", f])``."""
    return run_alone(register, argv)
