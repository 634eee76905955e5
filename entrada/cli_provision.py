"""``entrada site``, ``entrada provision`` and ``entrada broker-config``: a site's accounts.

- ``entrada site init DIR --site ID --broker-host H [--broker-host H ...]
  [--tls-port 8883] [--plain-port N] [--max-devices N]``: a new site folder (CA, broker
  certificate, config-signing keypair; see entrada.site_dir);
- ``entrada site renew-cert [--site-dir DIR] [--broker-host H ...]``: a new broker
  certificate (new host names, or before it expires);
- ``entrada provision DEVICE --role ROLE [--site-dir DIR]``: a device's account and bundle;
- ``entrada provision --service NAME --kind KIND``: central, staff or technician account;
- ``entrada provision NAME --rotate`` / ``--revoke``: a new password / the end of an
  account (device or service); ``entrada provision --list``: every account;
- ``entrada broker-config [--site-dir DIR] --out DIR [--files-dir DIR]``: the broker's
  mosquitto.conf, password file, ACL and TLS files (entrada.brokerconf).

``--site-dir`` defaults to ``$ENTRADA_SITE_DIR``, else the current folder. Passwords are
never printed: they are in the bundles, which the commands name.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SITE_DIR_ENV = "ENTRADA_SITE_DIR"
RELOAD_HINT = (
    "then: entrada broker-config --out DIR (scripts/gen-broker-config.sh) and reload mosquitto"
)


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _usage(message: str) -> int:
    sys.stderr.write(f"entrada provision: {message}\n")
    return 2


def _site_dir(args: argparse.Namespace) -> Path:
    return Path(args.site_dir or os.environ.get(SITE_DIR_ENV) or ".")


def _cmd_site(args: argparse.Namespace) -> int:
    from entrada import provision

    if args.action == "init":
        site = provision.init_site(
            args.dir,
            args.site,
            args.broker_host,
            tls_port=args.tls_port,
            plain_port=args.plain_port,
            max_devices=args.max_devices,
        )
        _write(f"site {args.site} created in {site.path}")
        _write(f"keep {site.ca_key} and {site.signing_dir}/ safe: they are the site's trust")
        return 0
    cert = provision.renew_broker_cert(_site_dir(args), args.broker_host or None)
    _write(f"broker certificate {cert} renewed; {RELOAD_HINT.replace('reload', 'restart')}")
    return 0


def _cmd_provision(args: argparse.Namespace) -> int:
    from entrada import provision

    site = _site_dir(args)
    if args.list:
        return _list(site)
    name = args.service or args.name
    if not name:
        return _usage("give a DEVICE id or --service NAME")
    if args.service and args.name:
        return _usage("give either DEVICE or --service NAME")
    if args.revoke:
        provision.revoke(site, name)
        _write(f"{name} revoked; {RELOAD_HINT}")
        return 0
    if args.rotate:
        bundle = provision.rotate_password(site, name)
        _write(f"{name}: new password in {bundle}; install it, {RELOAD_HINT}")
        return 0
    if args.service:
        if not args.kind:
            return _usage("--service needs --kind")
        bundle = provision.add_service_account(site, name, args.kind)
    else:
        if not args.role:
            return _usage("a device needs --role")
        bundle = provision.provision_device(site, name, args.role)
    _write(f"{name}: bundle {bundle}")
    _write(RELOAD_HINT)
    return 0


def _list(site: Path) -> int:
    from entrada import provision

    _write(f"{'name':<24} {'kind':<11} {'role':<10} {'state':<8} password set")
    for name, acc in sorted(provision.list_accounts(site).items()):
        state = "active" if acc.active else "revoked"
        when = acc.revoked if acc.revoked is not None else acc.rotated
        _write(
            f"{name:<24} {acc.kind:<11} {acc.role or '-':<10} {state:<8} "
            f"{when.strftime('%Y-%m-%d %H:%M')}"
        )
    return 0


def _cmd_broker_config(args: argparse.Namespace) -> int:
    from entrada import brokerconf

    host = brokerconf.BrokerHost()
    if args.files_dir:
        host = brokerconf.BrokerHost(files_dir=Path(args.files_dir))
    files = brokerconf.write_broker_config(_site_dir(args), args.out, host)
    _write(f"wrote {files.conf}, {files.passwd.name}, {files.acl.name} and TLS files")
    _write(
        f"install: mosquitto.conf as /etc/mosquitto/mosquitto.conf, the rest in "
        f"{host.files_dir}/ readable by user mosquitto (scripts/gen-broker-config.sh --install)"
    )
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port")
    return int(text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``site``, ``provision`` and ``broker-config`` to the ``entrada`` command."""
    from entrada.site_dir import AccountKind, DeviceRole

    site_dir_help = f"the site folder (default ${SITE_DIR_ENV}, else the current folder)"

    site = subparsers.add_parser("site", help="create a site folder, renew its broker cert")
    ssub = site.add_subparsers(dest="action", required=True)
    init = ssub.add_parser("init", help="a new site folder: CA, broker cert, signing keys")
    init.add_argument("dir")
    init.add_argument("--site", required=True, help="site id (the second topic level)")
    init.add_argument(
        "--broker-host",
        action="append",
        required=True,
        metavar="HOST",
        help="a name or address devices use for the broker (repeat for more)",
    )
    init.add_argument("--tls-port", type=_port, default=8883)
    init.add_argument(
        "--plain-port",
        type=_port,
        help="also a plain listener on 127.0.0.1 for central on the broker host (off: none)",
    )
    init.add_argument("--max-devices", type=int, default=250, help="queue limits are sized on it")
    renew = ssub.add_parser("renew-cert", help="a new broker certificate from the site CA")
    renew.add_argument("--site-dir", help=site_dir_help)
    renew.add_argument("--broker-host", action="append", metavar="HOST", help="new host names")
    site.set_defaults(func=_cmd_site)

    prov = subparsers.add_parser(
        "provision", help="create, rotate or revoke a device's or service's MQTT account"
    )
    prov.add_argument("name", nargs="?", metavar="DEVICE", help="device id (or account name)")
    prov.add_argument("--role", choices=[r.value for r in DeviceRole])
    prov.add_argument("--service", metavar="NAME", help="a service account instead of a device")
    prov.add_argument("--kind", choices=[k.value for k in AccountKind if k != AccountKind.DEVICE])
    act = prov.add_mutually_exclusive_group()
    act.add_argument("--rotate", action="store_true", help="a new password, a new bundle")
    act.add_argument("--revoke", action="store_true", help="end the account, delete its bundle")
    act.add_argument("--list", action="store_true", help="list every account")
    prov.add_argument("--site-dir", help=site_dir_help)
    prov.set_defaults(func=_cmd_provision)

    bc = subparsers.add_parser(
        "broker-config", help="generate the site's Mosquitto config, passwords, ACL, TLS files"
    )
    bc.add_argument("--site-dir", help=site_dir_help)
    bc.add_argument("--out", required=True, help="folder to write the files into")
    bc.add_argument(
        "--files-dir",
        help="where the files will live on the broker host (default /etc/mosquitto/entrada)",
    )
    bc.set_defaults(func=_cmd_broker_config)
