"""``entrada tech``: a technician's tools for the devices of a site.

- ``tech cmd DEVICE NAME [key=value ...]``: send a command (``open-gate``, ``identify``,
  ``resync``, ``print-test``, ``diagnostics``, ``restart``, ``logs``; see
  ``controller.commands``) as an MQTT 5 request on the device's ``cmd/req`` (ResponseTopic
  its ``cmd/res``, random CorrelationData, MessageExpiryInterval ``--expiry``), wait for
  the matching answer and print it. Exit 0 when it ran, 1 when refused or failed, 3 with
  no answer in ``--timeout``. A value is JSON when it parses as JSON (``seconds=2``,
  ``full=true``), else a string. ``--id`` reuses a command id: the device answers a retry
  with the first result (``duplicate``) instead of running it again.
- ``tech logs DEVICE [--lines N]``: the device's recent log lines (the ``logs`` command).
- ``tech devices [--json]``: central's registry (role, presence, versions, config,
  outbox depth, last seen, faults).
- ``tech watch [--device D] [--kind K] [--json]``: live events and statuses, filtered by
  device and by kind (a glob: ``gate.*``; a status's kind is ``status``).

Broker and site come from central's config file (``--config``, or the
``ENTRADA_CENTRAL_CONFIG`` environment variable). The account is the technician's (or, for
``entrada queue``, the staff member's) own: ``--account FILE`` or ``ENTRADA_MQTT_ACCOUNT``
names the ``mqtt.toml`` that ``entrada provision --service NAME --kind technician`` wrote,
whose ``[mqtt]`` connection (host, port, username, password, CA) replaces central's. Without
one, central's ``[mqtt] username`` (or client id) is used, with a warning when central's
password comes with it: the site broker makes every client id its username, so a tool on
central's account pushes central itself off the broker. The client id asked for is always
a fresh ``tech-...`` one, never a device's or central's. ``register`` returns the ``tech``
group's subparsers so other modules add commands to the same group.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from entrada import protocol
from entrada.cli_alone import run_alone
from entrada.errors import ConfigError, EntradaError, ProtocolError
from entrada.mqtt import Incoming
from entrada.techlink import TechLink, add_account_option, connect

CONFIG_ENV = "ENTRADA_CENTRAL_CONFIG"
EXIT_CONFIG = 2
#: ``tech cmd``: the device refused or failed the command.
EXIT_REFUSED = 1
#: ``tech cmd``: no answer within ``--timeout``.
EXIT_NO_ANSWER = 3


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def central_config(args: argparse.Namespace) -> Any:
    """Central's config, from the file ``--config`` names (:func:`add_config_option`)."""
    from central.service import load_central_config

    if not args.config:
        raise ConfigError([f"give central's config file with --config or ${CONFIG_ENV}"])
    return load_central_config(args.config)


# --------------------------------------------------------------------- commands


def new_command_id() -> str:
    return f"tech-{secrets.token_hex(8)}"


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words as command arguments; a value is JSON if it parses, else text."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not key=value")
        try:
            args[key] = json.loads(text, parse_constant=_not_a_constant)
        except (ValueError, RecursionError):
            args[key] = text
    return args


def _not_a_constant(name: str) -> Any:
    raise ValueError(f"{name} is text here")  # NaN, Infinity: JSON has no such numbers


def send_command(
    link: TechLink,
    topics: protocol.Topics,
    device: str,
    request: protocol.CommandRequest,
    *,
    expiry: float,
    timeout: float,
) -> protocol.CommandResponse | None:
    """Publish ``request`` to ``device`` as an MQTT 5 request (:meth:`TechLink.request`)
    and wait up to ``timeout`` for its answer (None: no answer)."""
    msg = link.request(
        topics.cmd_request(device),
        protocol.encode(request),
        topics.cmd_response(device),
        expiry=expiry,
        timeout=timeout,
    )
    if msg is None:
        return None
    try:
        return protocol.decode(protocol.CommandResponse, msg.payload)
    except ProtocolError as err:
        raise EntradaError(f"{device} answered with an unreadable response: {err}") from err


def response_lines(device: str, response: protocol.CommandResponse) -> list[str]:
    """The text ``tech cmd`` prints for an answer."""
    if response.ok:
        verdict = "ok"
    elif response.code.startswith("reject."):
        verdict = "refused"
    else:
        verdict = "failed"
    head = f"{device} {response.name or '?'}: {verdict} [{response.code}]"
    reason = response.result.get("reason")
    if not response.ok and isinstance(reason, str):
        head += f": {reason}"
    if response.duplicate:
        head += " (a repeat of an answered command: this is its first result)"
    lines = [head]
    for key, value in response.result.items():
        if key == "reason" and not response.ok:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"  {key}: {shown}")
    return lines


def _request(args: argparse.Namespace, name: str, arguments: dict[str, Any]) -> int:
    try:
        request = protocol.CommandRequest(
            id=args.id or new_command_id(),
            name=name,
            args=arguments,
            expires=time.time() + args.expiry,
        )
    except ValidationError as err:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors())
        sys.stderr.write(f"entrada: not a command request: {problems}\n")
        return EXIT_CONFIG
    cfg = central_config(args)
    with connect(cfg, account=args.account) as (link, topics):
        response = send_command(
            link, topics, args.device, request, expiry=args.expiry, timeout=args.timeout
        )
    if response is None:
        sys.stderr.write(
            f"entrada: no answer from {args.device} within {args.timeout:g} s "
            "(offline? see `entrada tech devices`)\n"
        )
        return EXIT_NO_ANSWER
    if args.json:
        _write(response.model_dump_json())
    elif name == "logs" and response.ok:
        for line in response.result.get("lines", []):
            _write(str(line))
    else:
        for line in response_lines(args.device, response):
            _write(line)
    return 0 if response.ok else EXIT_REFUSED


def _cmd_cmd(args: argparse.Namespace) -> int:
    try:
        arguments = parse_pairs(args.args)
    except ValueError as err:
        sys.stderr.write(f"entrada: {err}\n")
        return EXIT_CONFIG
    return _request(args, args.name, arguments)


def _cmd_logs(args: argparse.Namespace) -> int:
    arguments: dict[str, Any] = {"lines": args.lines}
    if args.level:
        arguments["level"] = args.level
    return _request(args, "logs", arguments)


# ---------------------------------------------------------------------- devices


def _config_text(r: dict[str, Any]) -> str:
    """The config column: ``applied/desired state`` from central's desired configs, else
    the version the device says it runs."""
    c = r.get("config")
    if c is None:
        return f"v{r['config_version']}" if r.get("config_version") is not None else "-"
    return f"{c['applied_version'] or '-'}/{c['desired_version']} {c['state']}"


def device_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The table ``tech devices`` prints for :func:`central.admin.list_devices` rows (with
    ``config`` from :func:`with_config_states`). A config a device refused or rolled back
    gets a second line with its code and reason."""
    lines = [
        f"{'device':<16} {'role':<10} {'state':<8} {'software':<10} {'config':<18} "
        f"{'catalog':>8} {'outbox':>7}  {'last seen':<10} faults"
    ]
    for r in rows:
        catalog = "-" if r.get("catalog_version") is None else str(r["catalog_version"])
        lines.append(
            f"{r['device']:<16} {r['role']:<10} {r['state']:<8} {r.get('software') or '-':<10} "
            f"{_config_text(r):<18} {catalog:>8} {r['outbox_depth']:>7}  "
            f"{r['last_seen_text']:<10} {','.join(r['faults']) or '-'}"
        )
        c = r.get("config")
        if c is not None and c["state"] in ("rejected", "rolled_back"):
            lines.append(
                f"{'':<16} config version {c['desired_version']} {c['state']} "
                f"[{c['code'] or '-'}]: {c['reason'] or 'no reason given'}"
            )
    return lines


def with_config_states(rows: list[dict[str, Any]], states: Sequence[Any]) -> list[dict[str, Any]]:
    """``rows`` with a ``config`` entry each (None when central holds no desired config):
    desired and applied version, state (``pending``, ``applied``, ``rejected``,
    ``rolled_back``), code and reason, from :func:`central.devconfig.config_states`."""
    by_device = {s.device: s for s in states}
    out = []
    for r in rows:
        s = by_device.get(r["device"])
        config = None
        if s is not None:
            config = {
                "desired_version": s.desired_version,
                "applied_version": s.applied_version,
                "state": s.state,
                "code": s.code,
                "reason": s.reason,
                "reported_at": s.reported_at,
            }
        out.append({**r, "config": config})
    return out


def _cmd_devices(args: argparse.Namespace) -> int:
    from central.admin import list_devices
    from central.devconfig import config_states
    from central.service import db_path

    cfg = central_config(args)
    path = db_path(cfg)
    rows = with_config_states(list_devices(path, cfg.registry.offline_after), config_states(path))
    if args.json:
        _write(json.dumps({"devices": rows}, ensure_ascii=False))
    else:
        for line in device_lines(rows):
            _write(line)
    return 0


# ------------------------------------------------------------------------ watch


def _when(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f}"


def _brief(data: object, width: int = 160) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def watch_lines(
    topics: protocol.Topics,
    msg: Incoming,
    kinds: Sequence[str] = (),
    as_json: bool = False,
) -> list[str]:
    """What ``tech watch`` prints for one message: a line per event (or status) whose
    kind matches one of the ``kinds`` globs (all when empty). A payload the protocol
    refuses is shown as kind ``invalid``."""
    parsed = topics.parse_device_topic(msg.topic)
    if parsed is None:
        return []
    device, leaf = parsed
    records: list[dict[str, Any]] = []
    try:
        if leaf == "events":
            batch = protocol.decode(protocol.EventBatch, msg.payload)
            records = [
                {"kind": e.kind, "ts": e.ts, "stream": e.stream, "seq": e.seq, "data": e.data}
                for e in batch.events
            ]
        elif leaf == "status":
            if not msg.payload:
                return []  # a retained status being cleared
            status = protocol.decode(protocol.Status, msg.payload)
            records = [{"kind": "status", "ts": status.ts, "status": status.model_dump()}]
        else:
            return []
    except ProtocolError as err:
        records = [{"kind": "invalid", "ts": time.time(), "reason": str(err), "leaf": leaf}]
    out = []
    for r in records:
        if kinds and not any(fnmatch.fnmatchcase(r["kind"], k) for k in kinds):
            continue
        if as_json:
            out.append(
                json.dumps({"device": device, "retained": msg.retain, **r}, ensure_ascii=False)
            )
        else:
            out.append(f"{_when(r['ts'])}  {device:<16} {r['kind']:<20} {_detail(r, msg.retain)}")
    return out


def _detail(record: dict[str, Any], retained: bool) -> str:
    if record["kind"] == "status":
        s = record["status"]
        text = (
            f"{s['state']} role {s['role']} epoch {s['epoch']} outbox {s['outbox_depth']} "
            f"faults {','.join(s['faults']) or '-'}"
        )
        return text + (" (retained)" if retained else "")
    if record["kind"] == "invalid":
        return f"{record['leaf']}: {record['reason']}"
    return f"#{record['seq']} {_brief(record['data'])}"


def watch(
    link: TechLink,
    topics: protocol.Topics,
    *,
    device: str | None = None,
    kinds: Sequence[str] = (),
    as_json: bool = False,
    count: int | None = None,
    write: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Print live events and statuses until ``count`` lines, ``stop``, or Ctrl-C."""
    write = write or _write
    dev = device or "+"
    link.subscribe([topics.device(dev, "events"), topics.device(dev, "status")])
    shown = 0
    while stop is None or not stop.is_set():
        try:
            msg = link.messages.get(timeout=0.2)
        except queue.Empty:
            continue
        for line in watch_lines(topics, msg, kinds, as_json):
            write(line)
            shown += 1
            if count is not None and shown >= count:
                return 0
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    cfg = central_config(args)
    with connect(cfg, account=args.account) as (link, topics):
        try:
            return watch(
                link,
                topics,
                device=args.device,
                kinds=args.kind or (),
                as_json=args.json,
                count=args.count,
            )
        except KeyboardInterrupt:
            return 0


# ----------------------------------------------------------------------- parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config`` (central's config file), defaulting to ``$ENTRADA_CENTRAL_CONFIG``."""
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV),
        help=f"central config file (default ${CONFIG_ENV})",
    )


def add_link_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--account``: what a tool connecting to the site broker needs."""
    add_config_option(parser)
    add_account_option(parser)


def seconds_up_to(limit: int) -> Callable[[str], float]:
    """An argparse ``type``: a number of seconds, over 0 and at most ``limit``."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from err
        if not 0 < value <= limit:
            raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and {limit} seconds")
        return value

    return seconds


_positive = seconds_up_to(86400)


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    add_link_options(parser)
    parser.add_argument(
        "--timeout", type=_positive, default=10.0, help="seconds to wait for the answer"
    )
    parser.add_argument(
        "--expiry",
        type=_positive,
        default=30.0,
        help="seconds after which the command must not run (broker and device both drop it)",
    )
    parser.add_argument(
        "--id", help="command id (default: a fresh one); a retry reuses it and runs it once"
    )
    parser.add_argument("--json", action="store_true", help="print the response as JSON")


def register(subparsers: Any) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``tech`` to ``entrada``'s subcommands; returns the ``tech`` group's
    subparsers (other modules add theirs to it)."""
    tech = subparsers.add_parser("tech", help="technicians' tools: commands, devices, live view")
    tsub = tech.add_subparsers(dest="tech_command", required=True)

    cmd = tsub.add_parser("cmd", help="send a command to a device and print its answer")
    cmd.add_argument("device")
    cmd.add_argument(
        "name", help="open-gate, identify, resync, print-test, diagnostics, restart, logs"
    )
    cmd.add_argument("args", nargs="*", metavar="key=value", help="arguments (JSON values)")
    _add_request_options(cmd)
    cmd.set_defaults(func=_cmd_cmd)

    logs = tsub.add_parser("logs", help="a device's recent log lines")
    logs.add_argument("device")
    logs.add_argument("--lines", type=int, default=100, help="how many (at most 500)")
    logs.add_argument(
        "--level", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="at least"
    )
    _add_request_options(logs)
    logs.set_defaults(func=_cmd_logs)

    devices = tsub.add_parser("devices", help="every device as central sees it")
    add_config_option(devices)
    devices.add_argument("--json", action="store_true", help="one JSON document")
    devices.set_defaults(func=_cmd_devices)

    watch_p = tsub.add_parser("watch", help="live events and statuses of the site's devices")
    add_link_options(watch_p)
    watch_p.add_argument("--device", help="one device only")
    watch_p.add_argument(
        "--kind",
        action="append",
        help="event kinds to show, a glob (gate.*); status for statuses; repeatable",
    )
    watch_p.add_argument("--json", action="store_true", help="one JSON object per line")
    watch_p.add_argument("--count", type=int, help="stop after this many lines")
    watch_p.set_defaults(func=_cmd_watch)
    return tsub


def main(argv: list[str] | None = None) -> int:
    """Run these commands alone (for tests): ``main(["tech", "devices", "--config", f])``."""
    return run_alone(register, argv)
