import pytest
from gate_taps import tap

from controller.roles.actions import Emit, Pulse, Signal
from controller.roles.gate import GateRole
from controller.rules.admission import Media
from controller.settings import GateSection
from entrada.codes import Outcome

ACTIVE = Media("04A1B2C3D4E5F6", "active")


@pytest.fixture
def gate():
    return GateRole(
        GateSection(admission="media", direction="in", debounce=2.0, relay_pulse=0.8), "gate-1"
    )


def test_grant_pulses_then_signals_then_records(gate):
    reaction = tap(gate, ACTIVE.uid, ACTIVE, 100.0, catalog_version=7)
    assert reaction.outcome == Outcome.GRANTED
    pulse, signal, emit = reaction.actions
    assert pulse == Pulse(0.8)
    assert signal == Signal(Outcome.GRANTED)
    assert isinstance(emit, Emit) and emit.kind == "gate.passage"
    assert emit.data["uid"] == ACTIVE.uid
    assert emit.data["catalog_version"] == 7
    assert emit.data["direction"] == "in"


def test_denial_never_pulses_and_is_recorded(gate):
    reaction = tap(gate, "DEADBEEF", None, 100.0, 1)
    assert reaction.outcome == Outcome.DENIED_UNKNOWN
    assert not any(isinstance(a, Pulse) for a in reaction.actions)
    assert [a.kind for a in reaction.actions if isinstance(a, Emit)] == ["gate.denied"]


@pytest.mark.parametrize(
    ("second_after", "outcome"),
    [(0.0, Outcome.IGNORED_DEBOUNCE), (1.99, Outcome.IGNORED_DEBOUNCE), (2.0, Outcome.GRANTED)],
)
def test_debounce_per_uid(gate, second_after, outcome):
    tap(gate, ACTIVE.uid, ACTIVE, 100.0, 1)
    assert tap(gate, ACTIVE.uid, ACTIVE, 100.0 + second_after, 1).outcome == outcome


def test_debounce_does_not_block_other_uids(gate):
    tap(gate, ACTIVE.uid, ACTIVE, 100.0, 1)
    other = Media("04FFFFFFFFFFFF", "active")
    assert tap(gate, other.uid, other, 100.1, 1).outcome == Outcome.GRANTED


def test_card_held_in_field_counts_once(gate):
    outcomes = [tap(gate, ACTIVE.uid, ACTIVE, 100.0 + 0.5 * i, 1).outcome for i in range(10)]
    assert outcomes.count(Outcome.GRANTED) == 1


def test_debounced_tap_has_no_actions(gate):
    tap(gate, ACTIVE.uid, ACTIVE, 100.0, 1)
    assert tap(gate, ACTIVE.uid, ACTIVE, 100.5, 1).actions == ()


def test_prune_forgets_old_uids(gate):
    tap(gate, ACTIVE.uid, ACTIVE, 100.0, 1)
    gate.prune(103.0)
    assert gate._last_seen == {}


def test_open_button_lets_one_through(gate):
    reaction = gate.on_press("open", 100.0)
    assert reaction.outcome == Outcome.MANUAL_OPEN
    assert Pulse(0.8) in reaction.actions
    assert [a.kind for a in reaction.actions if isinstance(a, Emit)] == ["gate.manual_open"]


def test_unknown_button_does_nothing(gate):
    assert gate.on_press("lights", 100.0).actions == ()
