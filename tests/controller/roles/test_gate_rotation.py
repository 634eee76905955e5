"""The gate role with a rotation sensor: grant -> rotation -> passage, or annulled.

Each case is a script of (time, step) fed to one role; the test compares every event the
role asked to record, in order, as (kind, uid, extra) where extra is the annulment reason
or the outcome of a passage opened by the staff key.
"""

import pytest
from gate_taps import tap

from controller.roles.actions import Emit, Pulse, Reaction, Signal
from controller.roles.gate import MAX_PENDING, GateRole
from controller.rules.admission import Media
from controller.settings import GateSection
from entrada.codes import Outcome

A, B, C = "04AAAAAAAAAAAA", "04BBBBBBBBBBBB", "04CCCCCCCCCCCC"
CATALOG = {uid: Media(uid, "active") for uid in (A, B, C)}
TIMEOUT = 8.0


def make_gate(rotation: bool = True) -> GateRole:
    cfg = GateSection(admission="media", debounce=2.0, relay_pulse=0.8, rotation_timeout=TIMEOUT)
    return GateRole(cfg, "gate-1", rotation=rotation)


def step(gate: GateRole, now: float, what: str, arg: str = "") -> Reaction | None:
    if what == "tap":
        return tap(gate, arg, CATALOG.get(arg), now, catalog_version=3)
    if what == "press":
        return gate.on_press(arg, now)
    if what == "rotate":
        return gate.on_rotation(now)
    assert what == "tick"
    return gate.on_tick(now)


def emitted(reactions: list[Reaction | None]) -> list[tuple[str, str | None, str | None]]:
    return [
        (a.kind, a.data.get("uid"), a.data.get("reason") or a.data.get("outcome"))
        for r in reactions
        if r is not None
        for a in r.actions
        if isinstance(a, Emit)
    ]


def granted(uid):
    return ("gate.granted", uid, "granted")


def passage(uid):
    return ("gate.passage", uid, "granted")


def annulled(uid, reason="timeout"):
    return ("gate.annulled", uid, reason)


UNEXPECTED = ("gate.rotation_unexpected", None, "rotation.unexpected")


@pytest.mark.parametrize(
    ("script", "events"),
    [
        pytest.param(
            [(100, "tap", A), (102, "rotate")], [granted(A), passage(A)], id="grant-rotate-commit"
        ),
        pytest.param(
            [(100, "tap", A), (107.9, "tick"), (108, "tick")],
            [granted(A), annulled(A)],
            id="no-rotation-in-time-annuls",
        ),
        pytest.param(
            [(100, "tap", A), (100.5, "tap", B), (101, "rotate"), (102, "rotate")],
            [granted(A), granted(B), passage(A), passage(B)],
            id="two-grants-two-rotations-fifo",
        ),
        pytest.param(
            [(100, "tap", A), (101, "tap", B), (102, "rotate"), (110, "tick")],
            [granted(A), granted(B), passage(A), annulled(B)],
            id="two-grants-one-rotation",
        ),
        pytest.param([(100, "rotate")], [UNEXPECTED], id="rotation-with-nothing-pending"),
        pytest.param(
            [(100, "tap", A), (102, "rotate"), (103, "rotate")],
            [granted(A), passage(A), UNEXPECTED],
            id="one-grant-two-rotations-tailgater",
        ),
        pytest.param(
            [(100, "tap", A), (109, "rotate")],
            [granted(A), annulled(A), UNEXPECTED],
            id="late-rotation-is-unexpected-even-without-a-tick",
        ),
        pytest.param(
            [(100, "tap", "04DEADBEEF0000"), (101, "rotate")],
            [("gate.denied", "04DEADBEEF0000", "denied.unknown"), UNEXPECTED],
            id="a-denial-opens-nothing",
        ),
        pytest.param(
            [(100, "tap", A), (101, "tap", A), (102, "rotate"), (103, "rotate")],
            [granted(A), passage(A), UNEXPECTED],
            id="a-debounced-tap-opens-nothing",
        ),
        pytest.param(
            [(100, "tap", A), (103, "tap", A), (104, "rotate"), (112, "tick")],
            [granted(A), granted(A), passage(A), annulled(A)],
            id="tapped-twice-walked-once-counts-once",
        ),
        pytest.param(
            [(100, "press", "open"), (101, "rotate")],
            [("gate.manual_open", None, None), ("gate.passage", None, "manual.open")],
            id="staff-opening-walked-through",
        ),
        pytest.param(
            [(100, "press", "open"), (108, "tick")],
            [("gate.manual_open", None, None), ("gate.annulled", None, "timeout")],
            id="staff-opening-not-used",
        ),
        pytest.param(
            [(100, "tap", A), (1000, "tap", B), (1001, "rotate")],
            [granted(A), annulled(A), granted(B), passage(B)],
            id="a-grant-first-annuls-what-expired",
        ),
    ],
)
def test_rotation_script(script, events):
    gate = make_gate()

    reactions = [step(gate, now, *rest) for now, *rest in script]

    assert emitted(reactions) == events


@pytest.mark.parametrize(
    ("script", "events"),
    [
        pytest.param([(100, "tap", A)], [passage(A)], id="grant-is-a-passage-at-once"),
        pytest.param([(100, "tap", A), (200, "tick")], [passage(A)], id="nothing-to-annul"),
        pytest.param(
            [(100, "press", "open")], [("gate.manual_open", None, None)], id="staff-opening"
        ),
    ],
)
def test_without_a_sensor_nothing_changes(script, events):
    gate = make_gate(rotation=False)

    reactions = [step(gate, now, *rest) for now, *rest in script]

    assert emitted(reactions) == events
    assert gate.pending == 0
    first = reactions[0]
    assert first is not None
    assert all("granted_at" not in a.data for a in first.actions if isinstance(a, Emit))


def test_a_grant_unlocks_and_signals_before_recording_the_decision():
    gate = make_gate()

    reaction = tap(gate, A, CATALOG[A], 100.0, catalog_version=3)

    assert reaction.outcome == Outcome.GRANTED
    pulse, signal, emit = reaction.actions
    assert (pulse, signal) == (Pulse(0.8), Signal(Outcome.GRANTED))
    assert emit == Emit(
        "gate.granted",
        {
            "uid": A,
            "direction": "in",
            "outcome": "granted",
            "rule_version": "admission/1",
            "catalog_version": 3,
            "minutes_offline": None,
            "granted_at": 100.0,
        },
    )
    assert gate.pending == 1


def test_the_passage_carries_the_decision_and_both_times():
    gate = make_gate()
    tap(gate, A, CATALOG[A], 100.0, catalog_version=3)

    reaction = gate.on_rotation(102.5)

    assert reaction.outcome == Outcome.PASSAGE_COMMITTED
    assert reaction.actions == (
        Emit(
            "gate.passage",
            {
                "uid": A,
                "direction": "in",
                "outcome": "granted",
                "rule_version": "admission/1",
                "catalog_version": 3,
                "minutes_offline": None,
                "granted_at": 100.0,
                "rotated_at": 102.5,
            },
        ),
    )
    assert gate.pending == 0


def test_an_annulment_says_when_and_why_and_does_not_touch_the_turnstile():
    gate = make_gate()
    tap(gate, A, CATALOG[A], 100.0, catalog_version=3)

    reaction = gate.on_tick(108.0)

    assert reaction is not None and reaction.outcome == Outcome.PASSAGE_ANNULLED
    (emit,) = reaction.actions
    assert isinstance(emit, Emit) and emit.kind == "gate.annulled"
    assert (emit.data["granted_at"], emit.data["annulled_at"], emit.data["reason"]) == (
        100.0,
        108.0,
        "timeout",
    )
    assert emit.data["uid"] == A and emit.data["outcome"] == "granted"
    assert gate.on_tick(200.0) is None


def test_an_unexpected_rotation_is_signalled_and_recorded():
    gate = make_gate()

    reaction = gate.on_rotation(100.0)

    assert reaction.outcome == Outcome.ROTATION_UNEXPECTED
    signal, emit = reaction.actions
    assert signal == Signal(Outcome.ROTATION_UNEXPECTED)
    assert emit == Emit(
        "gate.rotation_unexpected",
        {"direction": "in", "outcome": "rotation.unexpected", "rotated_at": 100.0},
    )


def test_the_queue_is_bounded_and_the_oldest_gives_way():
    gate = make_gate()
    uids = [f"04{i:012X}" for i in range(MAX_PENDING + 1)]
    for i, uid in enumerate(uids[:-1]):
        tap(gate, uid, Media(uid, "active"), 100.0 + i * 0.01, 1)

    reaction = tap(gate, uids[-1], Media(uids[-1], "active"), 101.0, 1)

    assert gate.pending == MAX_PENDING
    assert emitted([reaction]) == [annulled(uids[0], "overflow"), granted(uids[-1])]
    assert emitted([gate.on_rotation(101.5)]) == [passage(uids[1])]


def test_stop_annuls_every_pending_passage():
    gate = make_gate()
    tap(gate, A, CATALOG[A], 100.0, 1)
    tap(gate, B, CATALOG[B], 101.0, 1)

    reaction = gate.on_stop(102.0)

    assert emitted([reaction]) == [annulled(A, "shutdown"), annulled(B, "shutdown")]
    assert gate.pending == 0
    assert gate.on_stop(103.0) is None


@pytest.mark.parametrize(
    ("tick_at", "annulled_now"),
    [
        pytest.param(50.0, False, id="stepped-back-no-annulment-yet"),
        pytest.param(2000.0, True, id="stepped-forward-annulled-at-once"),
    ],
)
def test_a_clock_step_annuls_within_one_timeout(tick_at, annulled_now):
    gate = make_gate()
    tap(gate, A, CATALOG[A], 1000.0, 1)

    first = gate.on_tick(tick_at)

    assert (first is not None) == annulled_now
    if not annulled_now:  # a deadline is never further than one timeout from now
        assert gate.on_tick(tick_at + TIMEOUT - 0.01) is None
        assert emitted([gate.on_tick(tick_at + TIMEOUT)]) == [annulled(A)]
