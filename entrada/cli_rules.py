# ruff: noqa: T201 (a command-line tool: its output is printed)
"""``entrada rules``: tools for the site's tariff and admission rules.

``entrada rules simulate RULES_FILE INPUT_FILE [--json] [--lang en]`` runs a day of
sales, taps, postings and payments (JSON Lines) through the engine with the rules given,
so an operator sees what a tariff change does before publishing it. The input format is
in docs/rules.md, "Simulating a change"; the work is done by
:mod:`controller.rules.simulate`, this module reads the files and prints.

Exit codes: 0 simulated; 2 the rules or the input are invalid (every error is listed) or a
file cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from controller.rules.decision import ChargeLine, Decision
    from controller.rules.model import Site
    from controller.rules.simulate import Result, Simulation, Summary

#: Exit code for an invalid rules or input file (as ``entrada config check``).
EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``rules`` command (and its subcommands) to ``entrada``'s parser."""
    from controller.rules.simulate import TEMPLATES

    rules = subparsers.add_parser("rules", help="try out the site's tariff and admission rules")
    sub = rules.add_subparsers(dest="rules_command", required=True)
    sim = sub.add_parser(
        "simulate",
        help="run a day of taps, sales and payments (JSON Lines) through a rules document",
        description="Run INPUT_FILE (JSON Lines: gates, wristbands, sales, taps, postings, "
        "payments, time-stops) through the rules in RULES_FILE (JSON, or TOML if it ends in "
        ".toml) and print every decision and a summary. See docs/rules.md.",
    )
    sim.add_argument("rules_file", metavar="RULES_FILE", help="rules document (.json or .toml)")
    sim.add_argument("input_file", metavar="INPUT_FILE", help="what happens, as JSON Lines")
    sim.add_argument("--json", action="store_true", help="one JSON object per line")
    sim.add_argument("--lang", default="en", choices=sorted(TEMPLATES), help="wording")
    sim.set_defaults(func=_cmd_simulate)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"entrada rules simulate: cannot read {path}: {err}", file=sys.stderr)
        return None


def _errors(path: str, errors: list[str]) -> int:
    print(f"{path}: {len(errors)} error(s):", file=sys.stderr)
    for error in errors:
        print(f"  - {error}", file=sys.stderr)
    return EXIT_INVALID


def _cmd_simulate(args: argparse.Namespace) -> int:
    from central.admin_catalog import RulesDocumentError, read_rules
    from controller.rules.errors import CatalogError
    from controller.rules.sim_input import SimulationInputError, parse_rules
    from controller.rules.simulate import simulate

    try:
        document = read_rules(args.rules_file)  # as `entrada catalog rules` reads it
        site = parse_rules(document)
    except (RulesDocumentError, CatalogError) as err:
        return _errors(args.rules_file, err.errors)
    input_text = _read(args.input_file)
    if input_text is None:
        return EXIT_INVALID
    try:
        result = simulate(input_text, site)
    except SimulationInputError as err:
        return _errors(args.input_file, err.errors)
    for line in _json_lines(result, args.lang) if args.json else _table(result, args.lang):
        print(line)
    return 0


def _charge_json(line: ChargeLine) -> dict[str, Any]:
    return {
        "code": str(line.code),
        "amount_minor": line.amount_minor,
        "currency": line.currency,
        "params": dict(line.params),
    }


def result_json(result: Result, site: Site, lang: str = "en") -> dict[str, Any]:
    """One action's result for ``--json``: the same fields for every action (null, 0 or
    empty where they do not apply); amounts in minor units."""
    from controller.rules.explain import render
    from controller.rules.simulate import TEMPLATES

    d = result.decision
    return {
        "line": result.line,
        "at": result.at.astimezone(site.tz).isoformat(),
        "action": result.action,
        "uid": result.uid,
        "gate": result.gate,
        "allowed": None if d is None else d.allowed,
        "code": None if d is None else str(d.code),
        "explanation": {"key": result.explanation.key, "params": result.explanation.as_dict()},
        "text": render(result.explanation, TEMPLATES[lang]),
        "amount_minor": result.amount_minor,
        "charges": [] if d is None else [_charge_json(c) for c in d.charges],
        "credits": [] if d is None else [_charge_json(c) for c in d.credits],
        "due_minor": 0 if d is None else d.due_minor,
        "post_to_tab": False if d is None else d.post_to_tab,
        "offline": False if d is None else d.offline,
        "currency": site.currency,
    }


def summary_json(summary: Summary, site: Site) -> dict[str, Any]:
    """The final ``--json`` line: ``{"summary": {...}}``."""
    return {"summary": {"currency": site.currency, **dataclasses.asdict(summary)}}


def _json_lines(sim: Simulation, lang: str) -> list[str]:
    objects = [result_json(r, sim.site, lang) for r in sim.results]
    objects.append(summary_json(sim.summary, sim.site))
    return [json.dumps(o, ensure_ascii=False) for o in objects]


def local_time(at: datetime, tz: ZoneInfo) -> str:
    """``2028-06-10 12:20`` in the site's zone (seconds if any; the offset when the wall
    clock shows that time twice)."""
    local = at.astimezone(tz)
    text = f"{local:%Y-%m-%d %H:%M}" + (f":{local:%S}" if local.second else "")
    twin = local.replace(fold=1 - local.fold)
    if twin.utcoffset() != local.utcoffset():
        offset = local.utcoffset() or timedelta(0)
        sign, minutes = ("-" if offset < timedelta(0) else "+"), abs(offset) // timedelta(minutes=1)
        text += f" {sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text


def _charges(decision: Decision, currency: str) -> str:
    from controller.rules.money import format_minor

    parts = []
    for line in decision.charges:
        described = dict(line.params).get("description")
        text = f"{line.code} {format_minor(line.amount_minor, currency)} {currency}"
        parts.append(f"{text} ({described})" if described else text)
    parts += [
        f"{line.code} -{format_minor(line.amount_minor, currency)} {currency}"
        for line in decision.credits
    ]
    return ", ".join(parts)


def _table(sim: Simulation, lang: str) -> list[str]:
    from controller.rules.explain import render
    from controller.rules.money import format_minor
    from controller.rules.simulate import TEMPLATES

    site, cur = sim.site, sim.site.currency
    head = ("time", "uid", "gate", "action", "code", "explanation", "due", "charges")
    rows = [head]
    for r in sim.results:
        d = r.decision
        rows.append(
            (
                local_time(r.at, site.tz),
                r.uid,
                r.gate or "-",
                r.action,
                "-" if d is None else str(d.code),
                render(r.explanation, TEMPLATES[lang]),
                f"{format_minor(d.due_minor, cur)} {cur}" if d is not None and d.due_minor else "",
                "" if d is None else _charges(d, cur),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return [*lines, "", *_summary(sim.summary, cur)]


def _counts(counts: Mapping[str, int]) -> str:
    return f" ({', '.join(f'{code} {n}' for code, n in counts.items())})" if counts else ""


def _summary(s: Summary, cur: str) -> list[str]:
    from controller.rules.money import format_minor

    def money(minor: int) -> str:
        return f"{format_minor(minor, cur)} {cur}"

    by_code = ", ".join(f"{code} {format_minor(n, cur)}" for code, n in s.charged_by_code.items())
    refused = sum(s.postings_refused.values())
    return [
        f"taps {s.taps}: {s.granted} granted, {s.taps - s.granted} denied{_counts(s.denied)}",
        f"postings {s.postings}: {s.postings - refused} granted, {refused} refused"
        + _counts(s.postings_refused),
        f"charged {money(s.charged_minor)}" + (f" ({by_code})" if by_code else ""),
        f"paid {money(s.paid_minor)}; deposits applied {money(s.deposit_applied_minor)}, "
        f"returned {money(s.deposit_refunded_minor)}",
        f"sold {s.sold} for {money(s.sales_minor)}",
        f"exits refused for owing: {s.owing_refusals}",
        f"inside at the end: {s.inside_at_end}",
    ]


def main(argv: list[str] | None = None) -> int:
    """``entrada rules ...`` on its own (tests; ``entrada`` itself calls :func:`register`)."""
    parser = argparse.ArgumentParser(prog="entrada")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
