"""The gate role with ``admission = "tariffs"``: the rules engine decides, the reaction
opens the turnstile, shows the explanation, logs a replayable input and records the
passage.

The site is tariff_rig's aquapark (facility ⊃ pool ⊃ sauna); each gate stands between two
neighbouring zones and a visit is walked through them, each passage a gate records fed to
the next decision as the runtime would.
"""

import json

import pytest
from tariff_rig import MINUTE, T0, UID, site

from controller.roles.actions import Emit, Pulse, Reaction, Record, Signal
from controller.roles.gate import GateRole
from controller.roles.gate_decide import TapContext
from controller.rules.assemble import WristbandRecord
from controller.rules.serial import dump_decision, load_logged_input
from controller.settings import GateSection
from entrada.protocol import EntitlementData, PaymentData, PeerPassage, WristbandData

SITE = site(version=7)
ROUTE = ["", "facility", "pool", "sauna"]  # outside, then ever deeper


def gate(zone_from: str, zone_to: str, rotation: bool = False, direction=None) -> GateRole:
    """A gate from ``zone_from`` to ``zone_to`` ("" is the outside); unless told, its
    direction is inwards when ``zone_to`` is deeper."""
    inwards = ROUTE.index(zone_to) > ROUTE.index(zone_from) if zone_to in ROUTE else True
    cfg = GateSection(
        admission="tariffs",
        direction=direction or ("in" if inwards else "out"),
        zone_from=zone_from,
        zone_to=zone_to,
        relay_pulse=0.5,
        debounce=2.0,
    )
    return GateRole(cfg, f"g-{zone_from or 'outside'}-{zone_to or 'outside'}", rotation=rotation)


def record(
    tariff: str | None,
    passages: tuple[PeerPassage, ...] = (),
    paid: int = 0,
    wristband: WristbandData | None = None,
) -> WristbandRecord:
    ents = [] if tariff is None else [("e1", EntitlementData(uid=UID, tariff_id=tariff))]
    payments = [("pay-1", PaymentData(uid=UID, amount_minor=paid, ts=T0))] if paid else []
    return WristbandRecord(UID, wristband or WristbandData(), ents, passages, payments=payments)


def tap(role, minute, rec, occupancy=None, minutes_offline=None, site_=SITE) -> Reaction:
    ctx = TapContext(rec, site_, 7, occupancy or {}, minutes_offline)
    return role.on_tap(UID, ctx, T0 + minute * MINUTE)


def recorded(reactions: list[Reaction]) -> tuple[PeerPassage, ...]:
    return tuple(a.passage for r in reactions for a in r.actions if isinstance(a, Record))


def walk(tariff: str, steps, paid: int = 0) -> list[Reaction]:
    """Tap through ``steps`` of ``(minute, zone_from, zone_to)``, each gate seeing the
    passages the earlier ones recorded."""
    reactions: list[Reaction] = []
    for minute, zone_from, zone_to in steps:
        rec = record(tariff, recorded(reactions), paid)
        reactions.append(tap(gate(zone_from, zone_to), minute, rec))
    return reactions


def kinds(reaction: Reaction) -> list[str]:
    return [type(a).__name__ for a in reaction.actions]


def the(kind: type, reaction: Reaction):
    (action,) = [a for a in reaction.actions if isinstance(a, kind)]
    return action


INTO_FACILITY = (0, "", "facility")
SAUNA_VISIT = [
    INTO_FACILITY,
    (5, "facility", "pool"),
    (10, "pool", "sauna"),
    (55, "sauna", "pool"),  # 45 minutes: two started half hours at 10.00
    (60, "pool", "facility"),
    (65, "facility", ""),
]
#: The actions of a grant without a rotation sensor, and of a refusal.
OPENED = ["Pulse", "Signal", "Emit", "Record"]
SHUT = ["Signal", "Emit"]


def test_a_grant_opens_shows_logs_a_replayable_input_and_records_the_passage():
    reaction = tap(gate("", "facility"), 0, record("timed-2h"))

    assert kinds(reaction) == ["Pulse", "Signal", "Emit", "Record"]
    assert the(Pulse, reaction) == Pulse(0.5)
    assert the(Signal, reaction) == Signal(
        "granted", {"key": "granted", "params": {"entries_left": 0}}
    )
    emit, passage = the(Emit, reaction), the(Record, reaction).passage
    assert emit.kind == "gate.passage"
    data = json.loads(json.dumps(emit.data))  # as stored in the outbox and sent to central
    assert data["passage"] == json.loads(passage.model_dump_json())
    replayed = load_logged_input(data["input"], SITE).decide()
    assert dump_decision(replayed) == data["decision"]
    assert (passage.uid, passage.zone_to, passage.tariff_id, passage.consumed) == (
        UID,
        "facility",
        "timed-2h",
        True,
    )


@pytest.mark.parametrize(
    ("tariff", "steps", "outcome"),
    [
        pytest.param("timed-2h", [INTO_FACILITY], "granted", id="entry"),
        pytest.param("timed-2h", [INTO_FACILITY, (1, "", "facility")], "denied.passback"),
        pytest.param("timed-2h", [INTO_FACILITY, (10, "", "facility")], "denied.pass_used_up"),
        pytest.param("timed-2h", [INTO_FACILITY, (5, "facility", "pool")], "granted"),
        pytest.param(
            "timed-2h",
            [INTO_FACILITY, (5, "facility", "pool"), (6, "pool", "sauna")],
            "denied.zone",
            id="sauna-not-on-the-ticket",
        ),
        pytest.param(None, [INTO_FACILITY], "denied.no_entitlement"),
        pytest.param("no-such-tariff", [INTO_FACILITY], "denied.tariff_unknown"),
        pytest.param(
            "timed-2h",
            [INTO_FACILITY, (110, "facility", "")],
            "granted",
            id="exit-within-two-hours",
        ),
        pytest.param("timed-2h", [(50, "facility", "")], "granted.unmatched_exit"),
        pytest.param("day-sauna", SAUNA_VISIT[:4], "granted", id="out-of-the-sauna"),
        pytest.param("day-sauna", SAUNA_VISIT, "denied.owing", id="sauna-time-owed-at-exit"),
    ],
)
def test_tariff_outcomes(tariff, steps, outcome):
    assert walk(tariff, steps)[-1].outcome == outcome


@pytest.mark.parametrize(
    ("rec", "ctx", "outcome", "actions"),
    [
        pytest.param(WristbandRecord(UID, None), {}, "denied.unknown", SHUT),
        pytest.param(
            record("timed-2h", wristband=WristbandData(status="blocked")),
            {},
            "denied.blocked",
            SHUT,
        ),
        pytest.param(record("timed-2h"), {"site_": None}, "denied.no_rules", SHUT),
        pytest.param(record("online-only"), {"minutes_offline": 0.5}, "denied.offline", SHUT),
        pytest.param(record("timed-2h"), {"minutes_offline": 0.5}, "granted.offline", OPENED),
        pytest.param(
            record("timed-2h"), {"occupancy": {"facility": 10_000}}, "granted", OPENED, id="no-cap"
        ),
    ],
)
def test_at_the_entrance(rec, ctx, outcome, actions):
    reaction = tap(gate("", "facility"), 0, rec, **ctx)

    assert (reaction.outcome, kinds(reaction)) == (outcome, actions)
    assert the(Emit, reaction).kind == ("gate.passage" if actions == OPENED else "gate.denied")


def test_a_full_sauna_refuses_entry():
    rec = record("day-sauna", recorded(walk("day-sauna", SAUNA_VISIT[:2])))

    full = tap(gate("pool", "sauna"), 10, rec, occupancy={"sauna": 2, "pool": 2})
    room = tap(gate("pool", "sauna"), 10, rec, occupancy={"sauna": 1, "pool": 2})

    assert (full.outcome, room.outcome) == ("denied.capacity", "granted")
    assert kinds(full) == SHUT
    assert the(Signal, full).detail == {"key": "denied.capacity", "params": {"zone": "sauna"}}


@pytest.mark.parametrize(
    ("direction", "zone_from", "zone_to"),
    [
        pytest.param("in", "", "spa", id="a-zone-the-rules-lack"),
        pytest.param("in", "pool", "facility", id="inwards-to-an-outer-zone"),
        pytest.param("out", "", "facility", id="outwards-from-the-outside"),
    ],
)
def test_a_gate_whose_zones_do_not_fit_the_rules_refuses_everyone(direction, zone_from, zone_to):
    reaction = tap(gate(zone_from, zone_to, direction=direction), 0, record("day-sauna"))

    assert reaction.outcome == "denied.gate_misconfigured"
    assert kinds(reaction) == SHUT
    assert "error" in the(Emit, reaction).data


def test_an_exit_owing_overtime_stays_shut_and_says_how_much():
    _entry, exit_ = walk("timed-2h", [INTO_FACILITY, (140, "facility", "")])

    assert (exit_.outcome, kinds(exit_)) == ("denied.owing", SHUT)
    detail = the(Signal, exit_).detail
    assert detail["key"] == "denied.owing.overtime"
    assert (detail["params"]["due_minor"], detail["params"]["due"]) == (1000, "10.00")
    data = json.loads(json.dumps(the(Emit, exit_).data))
    assert data["decision"]["due_minor"] == 1000
    assert dump_decision(load_logged_input(data["input"], SITE).decide()) == data["decision"]


def test_leaving_the_sauna_posts_its_time_to_the_tab_and_the_final_exit_owes_it():
    reactions = walk("day-sauna", SAUNA_VISIT)
    out_of_sauna, final = reactions[3], reactions[-1]

    posted = the(Record, out_of_sauna).passage
    assert (posted.tab_minor, posted.settled) == (2000, False)
    assert the(Signal, out_of_sauna).detail["params"]["amount_minor"] == 2000
    assert final.outcome == "denied.owing"
    assert the(Signal, final).detail["params"]["due_minor"] == 2000


def test_paid_at_the_kiosk_the_final_exit_opens_and_settles_the_visit():
    final = walk("day-sauna", SAUNA_VISIT, paid=2000)[-1]

    assert final.outcome == "granted"
    assert Pulse(0.5) in final.actions
    passage = the(Record, final).passage
    assert passage.settled is True and passage.zone_to is None
    assert the(Emit, final).data["decision"]["charges"][0]["amount_minor"] == 2000


def test_with_a_rotation_sensor_the_passage_is_recorded_when_the_turnstile_turns():
    role = gate("", "facility", rotation=True)
    granted = tap(role, 0, record("timed-2h"))
    turned = role.on_rotation(T0 + 3.5)

    assert kinds(granted) == ["Pulse", "Signal", "Emit"]
    assert the(Emit, granted).kind == "gate.granted"
    emit, passage = the(Emit, turned), the(Record, turned).passage
    assert (emit.kind, passage.at, emit.data["passage"]["at"]) == (
        "gate.passage",
        T0 + 3.5,
        T0 + 3.5,
    )
    assert emit.data["decision"] == the(Emit, granted).data["decision"]
    assert "input" in emit.data
