"""Central replays every decision a gate made without it, against what central knew.

A gate that has lost central still decides, under each tariff's offline policy and with
only what it heard from its peers. Each ``gate.passage`` and ``gate.denied`` event logs the
decision, its input (:func:`~controller.rules.serial.dump_logged_input`) and
``minutes_offline``; when that is not null the decision was made offline, and
:class:`Replayer` decides it again:

- the rules: those in force at the event's catalog version (``rules_document``);
- the wristband: central's record of it (:func:`central.history.wristband_record`) before
  the decision's instant, without the passage the decision itself made;
- the gate, the instant and the zone occupancy: the logged ones (central cannot know the
  occupancy better than the gate did); ``minutes_offline=None``.

The two decisions are compared; a difference is a *conflict* of a stable
:class:`ConflictKind`. Every replayed event gets one row in the ``replays`` table (keyed
like the event), which is also the replayer's progress: an event is replayed once, also
across restarts. An event that cannot be replayed (its input unreadable, no rules at its
version) is recorded as ``unreplayable`` with the reason, never raised. Words for a
conflict (:func:`describe`) are made only at the edge: the CLI and the API.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from central.history import (
    Db,
    connection,
    event_decision,
    explanation_dict,
    site_at,
    wristband_record,
)
from central.history import ensure_schema as ensure_history_schema
from central.store import StoredEvent
from controller.rules.assemble import assemble
from controller.rules.decision import Decision
from controller.rules.errors import CatalogError
from controller.rules.explain import EN
from controller.rules.money import format_minor
from controller.rules.serial import load_logged_input
from entrada.errors import StoreError

logger = logging.getLogger(__name__)

#: An event waits this long after it reached central before it is replayed, so that the
#: passages other gates made during the same outage (sent when they reconnect) are in.
SETTLE_SECONDS = 300.0


class ConflictKind(StrEnum):
    """How an offline decision differs from central's replay. Stable: reports key on it."""

    ADMITTED_OFFLINE_WOULD_DENY = "admitted_offline_would_deny"
    DENIED_OFFLINE_WOULD_ADMIT = "denied_offline_would_admit"
    CHARGE_DIFFERS = "charge_differs"
    UNREPLAYABLE = "unreplayable"


SCHEMA = """
CREATE TABLE IF NOT EXISTS replays (
    device TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
    event_id TEXT NOT NULL, kind TEXT NOT NULL, uid TEXT, at REAL NOT NULL,
    original_code TEXT, replay_code TEXT, conflict TEXT,
    original_charged_minor INTEGER, replay_charged_minor INTEGER, currency TEXT,
    explanation TEXT, reason TEXT, replayed_at REAL NOT NULL,
    PRIMARY KEY (device, stream, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replays_conflicts ON replays (at) WHERE conflict IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_offline ON events (received_at)
    WHERE kind IN ('gate.passage', 'gate.denied')
    AND json_extract(data, '$.minutes_offline') IS NOT NULL;
"""

#: Pending offline decisions, oldest arrival first (the WHERE matches ``events_offline``).
_PENDING = """
SELECT e.device, e.stream, e.seq, e.id, e.kind, e.ts, e.data, e.received_at
FROM events e INDEXED BY events_offline
WHERE e.kind IN ('gate.passage', 'gate.denied')
    AND json_extract(e.data, '$.minutes_offline') IS NOT NULL
    AND e.received_at <= ?
    AND NOT EXISTS (
        SELECT 1 FROM replays r
        WHERE r.device = e.device AND r.stream = e.stream AND r.seq = e.seq)
ORDER BY e.received_at, e.device, e.stream, e.seq
LIMIT ?
"""

_COLUMNS = (
    "device, stream, seq, event_id, kind, uid, at, original_code, replay_code, conflict, "
    "original_charged_minor, replay_charged_minor, currency, explanation, reason, replayed_at"
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the ``replays`` table and the indexes the replayer and the history read by
    (idempotent; on a writable connection, e.g. when the service opens its store)."""
    ensure_history_schema(conn)
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


@dataclass(frozen=True)
class Replay:
    """The replay of one event: a row of ``replays``.

    ``conflict`` is None when the replay agrees (or, with a ``reason``, when there was no
    rules decision to replay: a gate that admits by the medium only). ``explanation`` is
    the replay's ``{"key", "params"}``.
    """

    device: str
    stream: str
    seq: int
    event_id: str
    kind: str
    uid: str | None
    at: float
    original_code: str | None
    replay_code: str | None
    conflict: ConflictKind | None
    original_charged_minor: int | None = None
    replay_charged_minor: int | None = None
    currency: str | None = None
    explanation: dict[str, Any] | None = None
    reason: str | None = None
    replayed_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "stream": self.stream,
            "seq": self.seq,
            "event_id": self.event_id,
            "kind": self.kind,
            "uid": self.uid,
            "at": self.at,
            "conflict": str(self.conflict) if self.conflict is not None else None,
            "original_code": self.original_code,
            "replay_code": self.replay_code,
            "original_charged_minor": self.original_charged_minor,
            "replay_charged_minor": self.replay_charged_minor,
            "currency": self.currency,
            "explanation": self.explanation,
            "reason": self.reason,
            "replayed_at": self.replayed_at,
        }


#: A replay whose conflict is not None.
Conflict = Replay


class _Unreplayable(Exception):
    """Why an event cannot be replayed (recorded, not raised further)."""


def classify(original: Decision, replayed: Decision) -> ConflictKind | None:
    """How ``replayed`` (central, online) differs from ``original`` (the gate, offline)."""
    if original.allowed and not replayed.allowed:
        return ConflictKind.ADMITTED_OFFLINE_WOULD_DENY
    if not original.allowed and replayed.allowed:
        return ConflictKind.DENIED_OFFLINE_WOULD_ADMIT
    if original.charged_minor != replayed.charged_minor:
        return ConflictKind.CHARGE_DIFFERS
    return None


def _logged_version(data: Mapping[str, Any], logged: Mapping[str, Any]) -> int:
    version = logged.get("catalog_version", data.get("catalog_version"))
    if type(version) is not int or version < 0:
        raise _Unreplayable(f"no catalog version logged (got {version!r})")
    return version


def replay_event(db: Db, event: StoredEvent, now: float) -> Replay:
    """Decide ``event`` again as central would have; never raises for bad data."""
    data = event.data
    uid = data.get("uid") if isinstance(data.get("uid"), str) else None
    original = event_decision(event)
    code = data.get("outcome")
    base = Replay(
        event.device,
        event.stream,
        event.seq,
        event.id,
        event.kind,
        uid,
        event.ts,
        code if isinstance(code, str) else (str(original.code) if original else None),
        None,
        None,
        original_charged_minor=original.charged_minor if original else None,
        currency=original.currency if original else None,
        replayed_at=now,
    )
    logged = data.get("input")
    if logged is None and original is None:
        return _replace(base, reason="no rules decision logged (nothing to replay)")
    try:
        if uid is None:
            raise _Unreplayable("no uid")
        if original is None:
            raise _Unreplayable("the logged decision cannot be read")
        if not isinstance(logged, Mapping):
            raise _Unreplayable("no decision input logged")
        version = _logged_version(data, logged)
        site = site_at(db, version)
        if site is None:
            raise _Unreplayable(f"no rules published at catalog version {version}")
        inp = load_logged_input(logged, site)
        at = inp.now.timestamp()
        record = wristband_record(db, uid, before=at, exclude_event=event.id)
        fresh = assemble(
            record,
            site,
            inp.gate,
            inp.now,
            occupancy=inp.presence.occupancy,
            minutes_offline=None,
        )
        replayed = fresh.decide()
    except _Unreplayable as err:
        return _replace(base, conflict=ConflictKind.UNREPLAYABLE, reason=str(err))
    except CatalogError as err:
        return _replace(
            base, conflict=ConflictKind.UNREPLAYABLE, reason=f"rules invalid: {err.errors[0]}"
        )
    except (TypeError, ValueError, KeyError) as err:  # RulesInputError, ValidationError too
        reason = f"cannot replay: {type(err).__name__}: {str(err)[:300]}"
        return _replace(base, conflict=ConflictKind.UNREPLAYABLE, reason=reason)
    return _replace(
        base,
        at=at,
        replay_code=str(replayed.code),
        conflict=classify(original, replayed),
        replay_charged_minor=replayed.charged_minor,
        currency=replayed.currency,
        explanation=explanation_dict(replayed.explanation),
    )


def _replace(replay: Replay, **changes: Any) -> Replay:
    return Replay(**{**replay.__dict__, **changes})


def _row(r: Replay) -> tuple[Any, ...]:
    return (
        r.device,
        r.stream,
        r.seq,
        r.event_id,
        r.kind,
        r.uid,
        r.at,
        r.original_code,
        r.replay_code,
        str(r.conflict) if r.conflict is not None else None,
        r.original_charged_minor,
        r.replay_charged_minor,
        r.currency,
        json.dumps(r.explanation, separators=(",", ":")) if r.explanation else None,
        r.reason,
        r.replayed_at,
    )


def _from_row(row: tuple[Any, ...]) -> Replay:
    values = list(row)
    values[9] = ConflictKind(values[9]) if values[9] is not None else None
    values[13] = json.loads(values[13]) if values[13] else None
    return Replay(*values)


class Replayer:
    """Replays the offline decisions not replayed yet, a batch at a time.

    Call :meth:`run_once` from the thread that owns the store (e.g. the service's owner
    thread, every few seconds). ``settle_seconds``: how long an event waits after it
    reached central (see :data:`SETTLE_SECONDS`).
    """

    def __init__(self, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.settle_seconds = settle_seconds
        self._ready: sqlite3.Connection | None = None  # schema ensured on this connection

    def run_once(self, db: Db, now: float, limit: int = 500) -> int:
        """Replay up to ``limit`` pending offline decisions that reached central at least
        ``settle_seconds`` before ``now``; store the results in one transaction and
        return how many were replayed (0: nothing pending). Raises StoreError if the
        store fails (what was replayed before the failure is kept)."""
        conn = connection(db)
        if conn is not self._ready:
            _write(conn, lambda: ensure_schema(conn))
            self._ready = conn
        try:
            rows = conn.execute(_PENDING, (now - self.settle_seconds, limit)).fetchall()
        except sqlite3.Error as err:
            raise StoreError(f"store read failed: {err}") from err
        done: list[Replay] = []
        failure: StoreError | None = None
        for r in rows:
            event = StoredEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7])
            try:
                done.append(replay_event(db, event, now))
            except StoreError as err:
                failure = err
                break
        if done:
            _write(conn, lambda: _insert(conn, done))
            for replay in done:
                if replay.conflict is not None:
                    logger.info(
                        "replay %s/%s/%s uid %s: %s",
                        replay.device,
                        replay.stream,
                        replay.seq,
                        replay.uid,
                        replay.conflict,
                    )
        if failure is not None:
            raise failure
        return len(done)


def _insert(conn: sqlite3.Connection, replays: list[Replay]) -> None:
    conn.executemany(
        f"INSERT OR IGNORE INTO replays ({_COLUMNS}) VALUES ({','.join('?' * 16)})",  # noqa: S608 (fixed column list, values bound)
        [_row(r) for r in replays],
    )


def _write(conn: sqlite3.Connection, work: Callable[[], None]) -> None:
    """Run ``work`` in one write transaction of ``conn`` (StoreError if it fails)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as err:
        raise StoreError(f"cannot start a write: {err}") from err
    try:
        work()
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"replay write failed: {err}") from err
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def replays(db: Db, since: float | None = None, *, conflicts_only: bool = False) -> list[Replay]:
    """Stored replays in time order (an empty list before the first replay)."""
    sql = f"SELECT {_COLUMNS} FROM replays"  # noqa: S608 (fixed column list)
    clauses, args = [], []
    if conflicts_only:
        clauses.append("conflict IS NOT NULL")
    if since is not None:
        clauses.append("at >= ?")
        args.append(since)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    try:
        rows = connection(db).execute(sql + " ORDER BY at, device, stream, seq", args)
        return [_from_row(tuple(r)) for r in rows.fetchall()]
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return []
        raise StoreError(f"store read failed: {err}") from err
    except sqlite3.Error as err:
        raise StoreError(f"store read failed: {err}") from err


def conflicts(db: Db, since: float | None = None) -> list[Conflict]:
    """Every conflict found (unreplayable events included), oldest first; ``since``: only
    decisions made at or after that Unix time."""
    return replays(db, since, conflicts_only=True)


# ----------------------------------------------------------------------------- words


def _words(code: str | None, explanation: Mapping[str, Any] | None) -> str:
    """``denied.pass_used_up (All 10 entries used)``; the code alone if it cannot render."""
    if explanation is None:
        return code or "?"
    try:
        params = explanation.get("params") or {}
        text = EN[str(explanation["key"])].format_map(params)
    except (KeyError, ValueError, IndexError, AttributeError):
        return code or "?"
    return f"{code} ({text})"


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "?"
    if currency is None:
        return str(amount)
    return f"{format_minor(amount, currency)} {currency}"


def describe(replay: Replay) -> str:
    """One sentence about a conflict, in English (for the CLI and the API only)."""
    kind = replay.conflict
    if kind is ConflictKind.ADMITTED_OFFLINE_WOULD_DENY:
        return "admitted offline, would have been denied: " + _words(
            replay.replay_code, replay.explanation
        )
    if kind is ConflictKind.DENIED_OFFLINE_WOULD_ADMIT:
        return f"denied offline ({replay.original_code}), would have been admitted: " + _words(
            replay.replay_code, replay.explanation
        )
    if kind is ConflictKind.CHARGE_DIFFERS:
        return (
            f"charged {_money(replay.original_charged_minor, replay.currency)} offline, "
            f"would have charged {_money(replay.replay_charged_minor, replay.currency)}"
        )
    if kind is ConflictKind.UNREPLAYABLE:
        return f"could not be replayed: {replay.reason}"
    return "no conflict"
