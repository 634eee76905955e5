"""Central replays offline decisions against what it knew, and reports the conflicts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from history_rig import T0, UID, Rig

from central.replay import ConflictKind, Replayer, conflicts, describe, replays

MIN = 60.0
LATER = T0 + 86400.0  # when the replayer runs: every event has settled


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "central.sqlite")
    r.wristband(UID, deposit_minor=2000)
    yield r
    r.close()


def replay_all(rig: Rig) -> int:
    return Replayer(settle_seconds=0).run_once(rig.store, LATER)


def test_an_offline_entry_on_a_pass_a_peer_used_up_would_be_denied(rig: Rig) -> None:
    rig.entitlement("ent-1", "single")
    _, peer_in = rig.tap("entrance", T0)  # another entrance, online: the only entry
    _, peer_out = rig.tap("exit", T0 + 60 * MIN)
    offline, event = rig.tap(
        "entrance", T0 + 120 * MIN, offline=30.0, blind_to=[peer_in.id, peer_out.id]
    )
    assert offline.allowed  # the gate did not hear its peers

    assert replay_all(rig) == 1

    (found,) = conflicts(rig.store)
    assert found.conflict is ConflictKind.ADMITTED_OFFLINE_WOULD_DENY
    assert (found.event_id, found.uid, found.at) == (event.id, UID, T0 + 120 * MIN)
    assert (found.original_code, found.replay_code) == ("granted.offline", "denied.pass_used_up")
    assert found.explanation == {"key": "denied.pass_used_up", "params": {"entries": 1}}
    assert describe(found) == (
        "admitted offline, would have been denied: denied.pass_used_up (All 1 entries used)"
    )


def test_an_offline_entry_central_agrees_with_is_no_conflict(rig: Rig) -> None:
    rig.entitlement("ent-3", "pass3")
    rig.tap("entrance", T0)
    rig.tap("exit", T0 + 60 * MIN)
    rig.tap("entrance", T0 + 120 * MIN, offline=30.0)

    assert replay_all(rig) == 1

    assert conflicts(rig.store) == []
    (done,) = replays(rig.store)
    assert (done.original_code, done.replay_code, done.conflict) == (
        "granted.offline",
        "granted",
        None,
    )


def test_an_offline_denial_central_would_have_admitted(rig: Rig) -> None:
    rig.entitlement("ent-s", "strict")
    denied, _ = rig.tap("entrance", T0, offline=5.0)
    assert denied.code == "denied.offline"

    replay_all(rig)

    (found,) = conflicts(rig.store)
    assert found.conflict is ConflictKind.DENIED_OFFLINE_WOULD_ADMIT
    assert describe(found) == (
        "denied offline (denied.offline), would have been admitted: granted (Welcome)"
    )


def test_an_offline_exit_that_missed_a_posting_charged_too_little(rig: Rig) -> None:
    rig.entitlement("ent-spa", "spa")
    rig.tap("entrance", T0)
    rig.posting("bar-1", 500, T0 + 30 * MIN)
    unaware = dataclasses.replace(rig.knows(UID, T0 + 60 * MIN), postings=())
    exit_, _ = rig.tap("exit", T0 + 60 * MIN, offline=20.0, record=unaware)
    assert exit_.allowed and exit_.charged_minor == 0  # the deposit covers it either way

    replay_all(rig)

    (found,) = conflicts(rig.store)
    assert found.conflict is ConflictKind.CHARGE_DIFFERS
    assert (found.original_charged_minor, found.replay_charged_minor) == (0, 500)
    assert describe(found) == "charged 0.00 EUR offline, would have charged 5.00 EUR"


def test_online_decisions_are_not_replayed(rig: Rig) -> None:
    rig.entitlement("ent-3", "pass3")
    rig.tap("entrance", T0)

    assert replay_all(rig) == 0
    assert replays(rig.store) == []


def _offline_data(rig: Rig) -> dict[str, Any]:
    """The data of a real offline entry (not stored)."""
    rig.entitlement("ent-3", "pass3")
    _, event = rig.tap("entrance", T0, offline=5.0, received_at=LATER + 1)  # not yet settled
    return dict(event.data)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda d: {**d, "input": {"v": 99}}, "cannot replay"),
        (lambda d: {**d, "input": {**d["input"], "gate": {"id": 3}}}, "cannot replay"),
        (lambda d: {**d, "input": "not an object"}, "no decision input logged"),
        (
            lambda d: {**d, "input": {**d["input"], "catalog_version": 0}},
            "no rules published at catalog version 0",
        ),
        (lambda d: {**d, "decision": {"allowed": True}}, "the logged decision cannot be read"),
        (lambda d: {k: v for k, v in d.items() if k != "uid"}, "no uid"),
    ],
)
def test_what_cannot_be_replayed_is_recorded_with_the_reason(
    rig: Rig, spoil: Any, reason: str
) -> None:
    data = spoil(_offline_data(rig))
    rig.event("entrance", "gate.denied", T0, data)

    assert replay_all(rig) == 1

    (found,) = conflicts(rig.store)
    assert found.conflict is ConflictKind.UNREPLAYABLE
    assert found.reason is not None and found.reason.startswith(reason)
    assert describe(found).startswith("could not be replayed: ")


def test_a_decision_without_the_rules_engine_is_passed_over(rig: Rig) -> None:
    rig.event("entrance", "gate.passage", T0, {"uid": UID, "minutes_offline": 3.0})

    assert replay_all(rig) == 1

    assert conflicts(rig.store) == []
    (done,) = replays(rig.store)
    assert done.conflict is None and done.reason is not None


def test_each_event_is_replayed_once_also_after_a_restart(rig: Rig, tmp_path: Path) -> None:
    rig.entitlement("ent-s", "strict")
    rig.tap("entrance", T0, offline=5.0)
    rig.tap("entrance", T0 + MIN, offline=6.0)
    replayer = Replayer(settle_seconds=0)

    assert replayer.run_once(rig.store, LATER, limit=1) == 1
    assert replayer.run_once(rig.store, LATER, limit=1) == 1
    assert replayer.run_once(rig.store, LATER) == 0
    rig.close()
    rig.store = type(rig.store)(tmp_path / "central.sqlite")  # central restarts
    assert Replayer(settle_seconds=0).run_once(rig.store, LATER) == 0
    assert len(conflicts(rig.store)) == 2


def test_an_event_waits_for_its_peers_to_settle(rig: Rig) -> None:
    rig.entitlement("ent-s", "strict")
    rig.tap("entrance", T0, offline=5.0, received_at=T0 + 10)
    replayer = Replayer(settle_seconds=300)

    assert replayer.run_once(rig.store, T0 + 100) == 0
    assert replayer.run_once(rig.store, T0 + 310) == 1


def test_conflicts_since_an_instant(rig: Rig) -> None:
    rig.entitlement("ent-s", "strict")
    rig.tap("entrance", T0, offline=5.0)
    rig.tap("entrance", T0 + 60 * MIN, offline=65.0)
    replay_all(rig)

    assert [c.at for c in conflicts(rig.store, since=T0 + MIN)] == [T0 + 60 * MIN]


def test_no_replays_yet_reads_as_none(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "fresh.sqlite")
    try:
        rig.store._conn.execute("DROP TABLE replays")
        assert conflicts(rig.store) == []
    finally:
        rig.close()
