"""``entrada queue``: staff's counter operations, appointments and the queue's figures.

Every command is one :class:`~entrada.protocol_queue.QueueOp` sent as an MQTT 5 request
to the running central (``entrada/{site}/queue/op/req``, ResponseTopic
``entrada/{site}/queue/op/res/{username}/{client id}``, random CorrelationData, and a
MessageExpiryInterval of ``--timeout`` so an operation central could not take in time is
dropped by the broker rather than run later, when nobody expects it). Central's queue
desk answers with a :class:`~entrada.protocol_queue.QueueOpResult`, printed in plain
words: the outcome code and the ticket's label (``--json``: the raw answer).

=================================  =============================================
``sign-in COUNTER STAFF``          ``sign_in``
``sign-out COUNTER``               ``sign_out``
``next COUNTER``                   ``call_next`` (the policy picks the ticket)
``call COUNTER TICKET_ID``         ``call_ticket``
``recall COUNTER``                 ``recall`` (a no-show after ``max_recalls``)
``start`` / ``finish COUNTER``     ``start_service`` / ``finish_service``
``no-show COUNTER``                ``no_show``
``transfer TICKET_ID --service S`` ``transfer`` (and/or ``--counter C``)
``park`` / ``resume TICKET_ID``    ``park`` / ``resume``
``cancel TICKET_ID``               ``cancel``
``book SERVICE --at WHEN``         ``book_appointment``: prints the check-in code
``cancel-booking ID``              ``cancel_appointment``
``status TICKET_ID``               a ticket: state, people ahead, estimated wait
``stats [--by service|...]``       figures per service, counter or staff member
``board``                          what the display boards show
``unconfirmed``                    calls some display has not confirmed
=================================  =============================================

An operation gets a fresh op id; ``--op-id`` retries one whose answer was lost, and
central then answers with the first result (``duplicate``) instead of doing it twice.
Exit 0 done, 1 refused, 2 bad arguments or config, 3 no answer within ``--timeout`` (is
central running, with ``[queue]`` services?).

Broker, credentials, site and the queue's time zone come from central's config
(``--config`` or ``$ENTRADA_CENTRAL_CONFIG``, as for ``entrada tech``); the client id is a
fresh ``staff-...`` one.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from entrada.cli_alone import run_alone
from entrada.cli_tech import (
    EXIT_CONFIG,
    EXIT_NO_ANSWER,
    EXIT_REFUSED,
    add_link_options,
    central_config,
    seconds_up_to,
)
from entrada.errors import ConfigError, EntradaError, ProtocolError
from entrada.protocol import Topics, decode, encode
from entrada.protocol_queue import QueueOp, QueueOpResult, QueueTopics
from entrada.techlink import TechLink, connect


def _write(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def new_op_id() -> str:
    return f"staff-{secrets.token_hex(8)}"


# ------------------------------------------------------------------------ times


def slot_time(when: str | float, tz: str) -> float:
    """An appointment's slot as Unix time: Unix seconds, or an ISO 8601 date-time
    (``2026-11-23 14:30``) taken in the queue's zone ``tz`` unless it carries an offset.
    ValueError for anything else, or for a local time the clocks skip (spring forward)."""
    try:
        value = float(when)
    except ValueError:
        return _local_time(str(when), tz)
    if not (math.isfinite(value) and 0 <= value < 1e11):
        raise ValueError(f"{when!r} is not a time")
    return value


def _local_time(text: str, tz: str) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise ValueError(f"{text!r} is neither Unix seconds nor a date and time") from err
    if when.tzinfo is not None:
        return when.timestamp()
    if len(text.strip()) <= 10:
        raise ValueError(f"{text!r} needs a time of day, e.g. {text.strip()} 14:30")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {tz!r}") from err
    local = when.replace(tzinfo=zone)
    if datetime.fromtimestamp(local.timestamp(), zone).replace(tzinfo=None) != when:
        raise ValueError(f"{text} does not exist in {tz} (the clocks skip it)")
    return local.timestamp()


def _when(ts: float | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime(fmt)
    except (OverflowError, OSError, ValueError, ZoneInfoNotFoundError):
        return f"{ts:.0f}"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return "under a minute"
    return f"about {math.ceil(seconds / 60)} min"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


# ----------------------------------------------------------------- the request


def send_op(link: TechLink, topics: Topics, op: QueueOp, *, timeout: float) -> QueueOpResult | None:
    """Publish ``op`` on the site's op request topic (:meth:`TechLink.request`, expiring
    after ``timeout``) and wait up to ``timeout`` for its answer (None: no answer)."""
    qt = QueueTopics(topics)
    reply_topic = f"{qt.op_reply(link.username)}/{link.client_id}"
    msg = link.request(qt.op_request, encode(op), reply_topic, expiry=timeout, timeout=timeout)
    if msg is None:
        return None
    try:
        return decode(QueueOpResult, msg.payload)
    except ProtocolError as err:
        raise EntradaError(f"central answered with an unreadable result: {err}") from err


# ------------------------------------------------------------------ the words


def result_lines(op: str, res: QueueOpResult, tz: str) -> list[str]:
    """What an operation's answer (a QueueOpResult) prints: the verdict, the code and
    the ticket's label, then what it touched."""
    body: dict[str, Any] = res.result
    ticket = body.get("ticket") or {}
    head = f"{'ok' if res.ok else 'refused'} [{res.code}]"
    if ticket.get("label"):
        head += f" {ticket['label']}"
    if not res.ok:
        reason = body.get("detail") or body.get("reason")
        if reason:
            head += f": {reason}"
    if res.duplicate:
        head += f" (op {res.op_id} was done before: this is its first answer)"
    lines = [head]
    if ticket:
        where = f" at {ticket['counter']}" if ticket.get("counter") else ""
        lines.append(
            f"  ticket {ticket['label']} ({ticket['id']}), {ticket['service']}: "
            f"{ticket['state']}{where}"
        )
    call = body.get("call")
    if call:
        again = f", recall {call['recall']}" if call.get("recall") else ""
        lines.append(f"  call {call['call_id']} to {call['counter']}{again}")
    appointment = body.get("appointment")
    if appointment:
        lines.append(
            f"  appointment {appointment['id']}: {appointment['service']} at "
            f"{_when(appointment['slot'], tz)} ({tz}), {appointment['state']}"
        )
        if res.ok and op == "book_appointment":
            lines.append(f"  check-in code: {appointment['code']}")
    return lines


def status_lines(status: dict[str, Any]) -> list[str]:
    """A ticket as its holder sees it."""
    head = f"{status['label']} ({status['ticket_id']}), {status['service']}: {status['state']}"
    if status["state"] == "waiting":
        head += f", {status['ahead']} ahead, wait {_minutes(status['estimated_wait'])}"
    elif status.get("counter"):
        head += f" at {status['counter']}"
    return [head]


STATS_COLUMNS = (
    ("tickets", "tickets"),
    ("served", "served"),
    ("no-show", "no_shows"),
    ("cancel", "cancelled"),
    ("transf", "transferred"),
)


def stats_lines(by: str, figures: dict[str, dict[str, Any]]) -> list[str]:
    """The statistics table: counts, then waiting and service times (min:s)."""
    if not figures:
        return [f"no figures by {by} yet"]
    head = f"{by:<16}" + "".join(f"{name:>8}" for name, _ in STATS_COLUMNS)
    head += f"{'wait avg':>10}{'wait p90':>10}{'serv avg':>10}{'in target':>10}"
    lines = [head]
    for key, f in sorted(figures.items()):
        row = f"{key:<16}" + "".join(f"{f[field]:>8}" for _, field in STATS_COLUMNS)
        target = f["within_target"]
        row += (
            f"{_duration(f['wait_mean']):>10}{_duration(f['wait_p90']):>10}"
            f"{_duration(f['service_mean']):>10}"
            f"{'-' if target is None else f'{target:.0%}':>10}"
        )
        lines.append(row)
    lines.append("times in min:s")
    return lines


def board_lines(board: dict[str, Any], tz: str) -> list[str]:
    """What the display boards show, as text."""
    lines = [
        f"business day {board['day']}, open counters: {', '.join(board['open_counters']) or '-'}"
    ]
    lines.append("at the counters:" if board["current"] else "nobody at the counters")
    for c in board["current"]:
        lines.append(f"  {c['label']:<8} {c['counter_name']:<16} {c['state']}")
    for s in board["services"]:
        lines.append(
            f"  {s['service']:<12} {s['name']:<20} {s['waiting']:>4} waiting, "
            f"wait {_minutes(s['estimated_wait'])}"
        )
    if board["recent"]:
        lines.append("recent calls:")
    for c in board["recent"]:
        lines.append(f"  {_when(c['called_at'], tz, '%H:%M:%S')}  {c['label']:<8} {c['counter']}")
    return lines


def unconfirmed_lines(calls: list[dict[str, Any]], tz: str) -> list[str]:
    if not calls:
        return ["every call was confirmed by every display"]
    return [
        f"{_when(u['call']['called_at'], tz, '%H:%M:%S')}  {u['call']['label']:<8} "
        f"{u['call']['counter']:<12} not confirmed by {', '.join(sorted(u['missing']))}"
        for u in calls
    ]


# -------------------------------------------------------------------- commands


def _run(args: argparse.Namespace, op_name: str, op_args: dict[str, Any]) -> int:
    cfg = central_config(args)
    tz = cfg.queue.timezone
    if op_name == "book_appointment":
        try:
            op_args["slot"] = slot_time(op_args.pop("at"), tz)
        except ValueError as err:
            sys.stderr.write(f"entrada: --at: {err}\n")
            return EXIT_CONFIG
    try:
        op = QueueOp(
            op_id=getattr(args, "op_id", None) or new_op_id(),
            op=op_name,
            args={k: v for k, v in op_args.items() if v is not None},
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        sys.stderr.write(f"entrada: not a queue operation: {problems}\n")
        return EXIT_CONFIG
    staff = f"staff-{secrets.token_hex(4)}"
    try:
        with connect(cfg, client_id=staff, account=args.account) as (link, topics):
            res = send_op(link, topics, op, timeout=args.timeout)
    except EntradaError as err:
        sys.stderr.write(f"entrada: {err}\n")
        return EXIT_NO_ANSWER
    if res is None:
        sys.stderr.write(
            f"entrada: no answer from central within {args.timeout:g} s (is it running, "
            "with [queue] services?)\n"
        )
        return EXIT_NO_ANSWER
    if args.json:
        _write(res.model_dump_json())
        return 0 if res.ok else EXIT_REFUSED
    body = res.result
    if not res.ok:
        lines = result_lines(op_name, res, tz)
    elif op_name == "status":
        if body.get("status") is None:
            sys.stderr.write(f"entrada: no ticket {op_args['ticket_id']} in the queue\n")
            return EXIT_REFUSED
        lines = status_lines(body["status"])
    elif op_name == "stats":
        lines = stats_lines(body["by"], body["figures"])
    elif op_name == "board":
        lines = board_lines(body["board"], tz)
    elif op_name == "unconfirmed":
        lines = unconfirmed_lines(body["calls"], tz)
    else:
        lines = result_lines(op_name, res, tz)
    for line in lines:
        _write(line)
    return 0 if res.ok else EXIT_REFUSED


def _op(name: str, build: Callable[[argparse.Namespace], dict[str, Any]]) -> Any:
    def run(args: argparse.Namespace) -> int:
        return _run(args, name, build(args))

    return run


def _fields(names: Sequence[str]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    """The op's fields are the subcommand's positional arguments, by the same names."""
    return lambda args: {name: getattr(args, name) for name in names}


def _transfer(args: argparse.Namespace) -> dict[str, Any]:
    if args.service is None and args.counter is None:
        raise ConfigError(["transfer: give --service, --counter or both"])
    return {"ticket_id": args.ticket_id, "to_service": args.service, "to_counter": args.counter}


# ---------------------------------------------------------------------- parser


def _common(op: bool) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_link_options(parent)
    parent.add_argument(
        "--timeout",
        type=seconds_up_to(3600),
        default=10.0,
        help="seconds to wait for central's answer",
    )
    parent.add_argument("--json", action="store_true", help="print central's answer as JSON")
    if op:
        parent.add_argument(
            "--op-id", help="retry this operation id (default: a fresh one); done only once"
        )
    return parent


#: Subcommands whose positional arguments are the op's fields: (name, help, fields, op).
_SIMPLE: Sequence[tuple[str, str, tuple[str, ...], str]] = (
    ("sign-in", "sign a staff member in at a counter", ("counter", "staff"), "sign_in"),
    ("sign-out", "close a counter", ("counter",), "sign_out"),
    ("next", "call the next ticket to a counter", ("counter",), "call_next"),
    ("call", "call a given ticket to a counter", ("counter", "ticket_id"), "call_ticket"),
    ("recall", "call the counter's ticket again", ("counter",), "recall"),
    ("start", "the called customer arrived: service starts", ("counter",), "start_service"),
    ("finish", "the counter's customer is served", ("counter",), "finish_service"),
    ("no-show", "the called customer did not come", ("counter",), "no_show"),
    ("park", "take a ticket out of the queue for a while", ("ticket_id",), "park"),
    ("resume", "put a parked ticket back in the queue", ("ticket_id",), "resume"),
    ("cancel-booking", "cancel an appointment", ("appointment_id",), "cancel_appointment"),
)


def register(subparsers: Any) -> None:
    """Add ``queue`` and its subcommands to ``entrada``'s subcommands."""
    top = subparsers.add_parser("queue", help="counter operations, appointments, queue figures")
    qsub = top.add_subparsers(dest="queue_command", required=True)
    op_parent, query_parent = _common(True), _common(False)

    for name, text, fields, op_name in _SIMPLE:
        p = qsub.add_parser(name, help=text, parents=[op_parent])
        for field in fields:
            p.add_argument(field, metavar=field.upper())
        p.set_defaults(func=_op(op_name, _fields(fields)))

    p = qsub.add_parser(
        "transfer", help="send a ticket to another service or counter", parents=[op_parent]
    )
    p.add_argument("ticket_id", metavar="TICKET_ID")
    p.add_argument("--service", help="the service it queues for from now on")
    p.add_argument("--counter", help="only this counter may call it")
    p.set_defaults(func=_op("transfer", _transfer))

    p = qsub.add_parser("cancel", help="the customer is gone", parents=[op_parent])
    p.add_argument("ticket_id", metavar="TICKET_ID")
    p.add_argument("--reason", help="why (kept with the ticket)")
    p.set_defaults(func=_op("cancel", lambda a: {"ticket_id": a.ticket_id, "reason": a.reason}))

    p = qsub.add_parser(
        "book", help="book an appointment: prints its check-in code", parents=[op_parent]
    )
    p.add_argument("service", metavar="SERVICE")
    p.add_argument(
        "--at",
        required=True,
        help='the slot: "2026-11-23 14:30" in the queue\'s time zone, ISO 8601 with an '
        "offset, or Unix seconds",
    )
    p.add_argument("--note", help="a note kept with the appointment")
    p.set_defaults(
        func=_op("book_appointment", lambda a: {"service": a.service, "at": a.at, "note": a.note})
    )

    p = qsub.add_parser(
        "status", help="a ticket: state, people ahead, estimated wait", parents=[query_parent]
    )
    p.add_argument("ticket_id", metavar="TICKET_ID")
    p.set_defaults(func=_op("status", lambda a: {"ticket_id": a.ticket_id}))

    p = qsub.add_parser(
        "stats", help="figures per service, counter or staff member", parents=[query_parent]
    )
    p.add_argument("--by", choices=["service", "counter", "staff"], default="service")
    p.set_defaults(func=_op("stats", lambda a: {"by": a.by}))

    p = qsub.add_parser("board", help="what the display boards show", parents=[query_parent])
    p.set_defaults(func=_op("board", lambda a: {}))

    p = qsub.add_parser(
        "unconfirmed", help="calls a display board has not confirmed", parents=[query_parent]
    )
    p.set_defaults(func=_op("unconfirmed", lambda a: {}))


def main(argv: list[str] | None = None) -> int:
    """Run these commands alone (for tests): ``main(["queue", "next", "c1", "--config", f])``."""
    return run_alone(register, argv)
