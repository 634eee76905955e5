"""The ``entrada`` command: daemons, config tools, simulator input, catalog admin, demo.

Each subcommand imports only what it needs, so ``entrada sim tap`` stays quick and the
gate daemon never loads the central service or pygame.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from entrada.config import Section
from entrada.errors import ConfigError, EntradaError

DEFAULT_RUN_DIR = "/run/entrada"
#: Exit code for an invalid config file (systemd units and scripts key on it).
EXIT_CONFIG = 2


def _cmd_device(args: argparse.Namespace) -> int:
    from controller.daemon import run_device

    return run_device(args.config)


def _cmd_central(args: argparse.Namespace) -> int:
    from central.daemon import run_central

    return run_central(args.config)


def _schema_for(path: str) -> type[Section]:
    """Pick the schema by the document's top table: [device] or [central]."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError([str(err)], path) from err
    if "central" in doc:
        from central.settings import CentralConfig

        return CentralConfig
    from controller.settings import DeviceConfig

    return DeviceConfig


def _cmd_config(args: argparse.Namespace) -> int:
    from entrada import config as configlib

    if args.action == "reference":
        print(render_reference())
        return 0
    if not args.config:
        print("entrada config: --config FILE is required", file=sys.stderr)
        return 2
    cfg: Section = configlib.load(args.config, _schema_for(args.config))
    if args.action == "show":
        print(configlib.show(cfg), end="")
    else:
        print(f"{args.config}: valid")
    return 0


def render_reference() -> str:
    """docs/config.md, generated from the declared schemas."""
    from central.settings import CentralConfig
    from controller.settings import DeviceConfig
    from entrada import config as configlib

    head = (
        "# Config reference\n\n"
        "Generated from the declared schemas (`controller/settings.py`, "
        "`central/settings.py`) by `entrada config reference`; do not edit by hand.\n\n"
        "Config files are TOML. Every error in a file is reported at once; unknown keys are "
        "errors with a suggestion; `entrada config show --config FILE` prints the effective "
        "config with defaults filled in and secrets masked; `entrada config check` only "
        "validates.\n\n"
    )
    return (
        head
        + configlib.reference(DeviceConfig, "Device daemon (`entrada device`)")
        + "\n"
        + configlib.reference(CentralConfig, "Central service (`entrada central`)")
    )


def _run_dir(args: argparse.Namespace) -> Path:
    if args.config:
        from controller.daemon import load_device_config

        return load_device_config(args.config).device.run_dir
    return Path(args.run_dir or os.environ.get("ENTRADA_RUN_DIR", DEFAULT_RUN_DIR))


#: The simulated printer's fault knobs (``entrada sim printer``).
PRINTER_KNOBS = ("paper", "cover", "offline", "fail_next_print")


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1", "on"):
        return True
    if text.lower() in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"yes or no, not {text!r}")


def _cmd_sim(args: argparse.Namespace) -> int:
    from controller.simchannel import SimClient

    client = SimClient(_run_dir(args), args.device)
    try:
        if args.verb == "tap":
            reply = client.tap(args.uid)
        elif args.verb == "press":
            reply = client.press(args.button)
        elif args.verb == "rotate":
            reply = client.rotate()
        elif args.verb == "scan":
            reply = client.request(verb="scan", code=args.code)
        elif args.verb == "printer":
            faults = {k: v for k, v in vars(args).items() if k in PRINTER_KNOBS and v is not None}
            reply = client.request(verb="printer", **faults)
            if reply.get("ok"):
                print(f"{args.device} printer faults: {', '.join(reply['faults']) or 'none'}")
        elif args.verb == "clock":
            reply = client.request(verb="clock", set=args.set, advance=args.advance)
            if reply.get("ok"):
                print(f"{args.device} wall time {reply['time']:.3f}")
        else:
            reply = client.request(verb="reader", online=args.state == "online")
    finally:
        client.close()
    if not reply.get("ok"):
        print(f"refused: {reply.get('error')}", file=sys.stderr)
        return 1
    return 0


#: Marks an option left out (``None`` may be a value: ``--tab-limit none``).
_UNSET = object()


def _minor(text: str) -> int:
    """An amount in integer minor units (``1250`` is 12.50 in a two-decimal currency)."""
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minor units")
    return int(text)


def _minor_or_none(text: str) -> int | None:
    return None if text.lower() == "none" else _minor(text)


def _central_db(args: argparse.Namespace) -> Path:
    from central.service import db_path, load_central_config

    return db_path(load_central_config(args.config))


def _cmd_catalog(args: argparse.Namespace) -> int:
    from central import admin, admin_catalog

    db = _central_db(args)
    if args.action == "set":
        fields = {
            name: value
            for name, value in (
                ("status", args.status),
                ("holder", args.holder),
                ("assurance", args.assurance),
                ("deposit_minor", args.deposit),
                ("tab_limit_minor", args.tab_limit),
            )
            if value is not _UNSET
        }
        head = admin.update_wristbands(db, args.uids, fields)
    elif args.action == "import":
        head = admin.import_wristbands_csv(db, args.file)
    elif args.action == "rules":
        try:
            head = admin_catalog.publish_rules(db, args.file)
        except admin_catalog.RulesDocumentError as err:
            print(err, file=sys.stderr)
            return EXIT_CONFIG
    elif args.action == "entitle":
        ent_id, head = admin_catalog.entitle(
            db,
            args.uid,
            args.tariff,
            entitlement_id=args.id,
            concession=args.concession,
            valid_from=args.valid_from,
            valid_to=args.valid_to,
        )
        print(f"entitlement {ent_id}")
    else:
        head = admin_catalog.import_entitlements_csv(db, args.file)
    print(f"catalog version {head}")
    return 0


def _cmd_tab(args: argparse.Namespace) -> int:
    from central import admin_catalog
    from controller.rules.explain import render

    db = _central_db(args)
    try:
        if args.action == "post":
            entry = admin_catalog.post_to_tab(
                db, args.uid, args.amount, ref=args.ref, description=args.description
            )
        elif args.action == "pay":
            entry = admin_catalog.pay_tab(
                db, args.uid, args.amount, ref=args.ref, method=args.method
            )
        else:
            entry = admin_catalog.stop_time(db, args.uid, at=args.at, ref=args.ref)
    except admin_catalog.TabRefused as err:
        print(f"refused [{err.code}]: {render(err.explanation)}", file=sys.stderr)
        return 1
    again = " (already recorded)" if entry.duplicate else ""
    owed = f"; tab owes {entry.owed_minor}" if args.action != "timestop" else ""
    print(f"{args.action} {entry.ref}{again}{owed}; catalog version {entry.head}")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from central.admin import list_devices
    from central.service import db_path, load_central_config

    cfg = load_central_config(args.config)
    rows = list_devices(db_path(cfg), cfg.registry.offline_after)
    print(f"{'device':<16} {'role':<8} {'state':<8} {'epoch':>12} {'outbox':>7}  last seen  faults")
    for r in rows:
        print(
            f"{r['device']:<16} {r['role']:<8} {r['state']:<8} {r['epoch']:>12} "
            f"{r['outbox_depth']:>7}  {r['last_seen_text']}  {','.join(r['faults']) or '-'}"
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from entrada.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="entrada", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("device", help="run the device daemon")
    d.add_argument("--config", required=True)
    d.set_defaults(func=_cmd_device)

    c = sub.add_parser("central", help="run the central service")
    c.add_argument("--config", required=True)
    c.set_defaults(func=_cmd_central)

    cf = sub.add_parser("config", help="check or show a config file, or print the reference")
    cf.add_argument("action", choices=["show", "check", "reference"])
    cf.add_argument("--config")
    cf.set_defaults(func=_cmd_config)

    s = sub.add_parser("sim", help="drive a device's simulated hardware")
    s.add_argument("--run-dir", help=f"the device's run_dir (default {DEFAULT_RUN_DIR})")
    s.add_argument("--config", help="take run_dir from this device config")
    ssub = s.add_subparsers(dest="verb", required=True)
    tap = ssub.add_parser("tap", help="present a wristband to the reader")
    tap.add_argument("device")
    tap.add_argument("uid")
    press = ssub.add_parser("press", help="press a button")
    press.add_argument("device")
    press.add_argument("button")
    rot = ssub.add_parser("rotate", help="turn the simulated turnstile once")
    rot.add_argument("device")
    clk = ssub.add_parser(
        "clock", help='move the wall time of a device with [device] clock = "sim"'
    )
    clk.add_argument("device")
    clk.add_argument("--set", type=float, help="Unix time to set")
    clk.add_argument("--advance", type=float, help="seconds to move forward (or back)")
    scan = ssub.add_parser("scan", help="show a code to a dispenser's simulated scanner")
    scan.add_argument("device")
    scan.add_argument("code", help="an appointment's check-in code")
    prn = ssub.add_parser("printer", help="put a fault on a dispenser's simulated printer")
    prn.add_argument("device")
    prn.add_argument("--paper", choices=["ok", "low", "out"])
    prn.add_argument("--cover", choices=["open", "closed"])
    prn.add_argument("--offline", type=_yes_no, help="yes or no")
    prn.add_argument("--fail-next-print", dest="fail_next_print", type=_yes_no)
    rdr = ssub.add_parser("reader", help="take the simulated reader offline or back")
    rdr.add_argument("device")
    rdr.add_argument("state", choices=["online", "offline"])
    s.set_defaults(func=_cmd_sim)

    cat = sub.add_parser("catalog", help="change the site catalog (through central's store)")
    cat.add_argument("--config", required=True, help="central config file")
    csub = cat.add_subparsers(dest="action", required=True)
    cset = csub.add_parser(
        "set", help="add or change wristbands (options left out keep their current values)"
    )
    cset.add_argument("uids", nargs="+")
    cset.add_argument("--status", default=_UNSET, choices=["active", "blocked", "lost", "expired"])
    cset.add_argument("--holder", default=_UNSET, help="holder's name ('' clears it)")
    cset.add_argument(
        "--assurance",
        default=_UNSET,
        choices=["secure", "uid_only"],
        help="uid_only: a medium that can be cloned (never carries a tab)",
    )
    cset.add_argument(
        "--deposit", default=_UNSET, type=_minor, metavar="MINOR", help="deposit held"
    )
    cset.add_argument(
        "--tab-limit",
        default=_UNSET,
        type=_minor_or_none,
        metavar="MINOR",
        help="most the open tab may owe ('none': no limit)",
    )
    cimp = csub.add_parser(
        "import",
        help="import wristbands from CSV (uid,status,holder,valid_until,assurance,"
        "deposit_minor,tab_limit_minor; only uid is required)",
    )
    cimp.add_argument("file")
    crules = csub.add_parser("rules", help="publish the site's rules (JSON, or TOML if .toml)")
    crules.add_argument("file")
    cent = csub.add_parser("entitle", help="give a wristband a ticket or pass")
    cent.add_argument("uid")
    cent.add_argument("tariff", help="a tariff id of the current rules")
    cent.add_argument("--id", help="entitlement id (default: a fresh one)")
    cent.add_argument(
        "--concession",
        default="adult",
        choices=["adult", "child", "senior", "student", "disabled"],
    )
    cent.add_argument("--from", dest="valid_from", metavar="DATE", help="YYYY-MM-DD, inclusive")
    cent.add_argument("--to", dest="valid_to", metavar="DATE", help="YYYY-MM-DD, inclusive")
    cents = csub.add_parser(
        "entitlements",
        help="import entitlements from CSV (id,uid,tariff_id,concession,valid_from,valid_to)",
    )
    cents.add_argument("file")
    cat.set_defaults(func=_cmd_catalog)

    tab = sub.add_parser("tab", help="post to, pay or stop the clock of a wristband's tab")
    tab.add_argument("--config", required=True, help="central config file")
    tsub = tab.add_subparsers(dest="action", required=True)
    tpost = tsub.add_parser("post", help="post a charge (checked against the rules)")
    tpost.add_argument("uid")
    tpost.add_argument("amount", type=_minor, metavar="AMOUNT_MINOR")
    tpost.add_argument("--ref", help="reference (default: a fresh one); a retry reuses it")
    tpost.add_argument("--description", default="")
    tpay = tsub.add_parser("pay", help="record a payment")
    tpay.add_argument("uid")
    tpay.add_argument("amount", type=_minor, metavar="AMOUNT_MINOR")
    tpay.add_argument("--ref", help="reference (default: a fresh one); a retry reuses it")
    tpay.add_argument("--method", default="", help="e.g. cash, card")
    tstop = tsub.add_parser("timestop", help="stop the stay clock (a kiosk tap)")
    tstop.add_argument("uid")
    tstop.add_argument("--at", type=float, metavar="UNIX", help="when (default: now)")
    tstop.add_argument("--ref", help="reference (default: a fresh one)")
    tab.set_defaults(func=_cmd_tab)

    dv = sub.add_parser("devices", help="list devices as central sees them")
    dv.add_argument("--config", required=True, help="central config file")
    dv.set_defaults(func=_cmd_devices)

    demo = sub.add_parser("demo", help="run a whole simulated site")
    demo.add_argument("--headless", action="store_true", help="no live screen, log lines only")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds of visitors")
    demo.add_argument(
        "--chaos",
        action="store_true",
        help="kill and restart the broker and central at random moments",
    )
    demo.add_argument("--json", action="store_true", help="end with one JSON summary line")
    demo.add_argument("--rate", type=float, default=20.0, help="taps per second")
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument("--workdir", help="keep the site's files here (default: a temp dir)")
    demo.set_defaults(func=_cmd_demo)

    from entrada import (
        cli_history,
        cli_provision,
        cli_queue,
        cli_rules,
        cli_tech,
        cli_techconfig,
    )

    cli_rules.register(sub)
    cli_history.register(sub)
    cli_techconfig.register(cli_tech.register(sub))
    cli_provision.register(sub)
    cli_queue.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    except EntradaError as err:
        print(f"entrada: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
