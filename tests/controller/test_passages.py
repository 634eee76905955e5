"""The passage log (in a real store file) and the zone occupancy kept from it."""

import sqlite3

import pytest

from controller.passages import Occupancy
from controller.store import DeviceStore
from entrada.protocol import PeerPassage

A, B, C = "04AAAAAAAAAAAA", "04BBBBBBBBBBBB", "04CCCCCCCCCCCC"
HOUR = 3600.0


def passage(n, uid=A, at=0.0, zone_to="facility", gate="gate-1", consumed=False, zone_from=None):
    """Passage number ``n`` (its id) of ``uid`` into ``zone_to`` at ``at``."""
    return PeerPassage(
        id=f"{n:032x}",
        uid=uid,
        at=at,
        zone_from=zone_from,
        zone_to=zone_to,
        direction="in" if zone_to is not None else "out",
        consumed=consumed,
        gate=gate,
    )


@pytest.fixture
def log(tmp_path):
    store = DeviceStore(tmp_path / "device.db")
    yield store.passages
    store.close()


def ids(passages):
    return [int(p.id, 16) for p in passages]


def test_a_passage_heard_twice_counts_once(log):
    first = log.add(passage(1, at=10.0))
    again = log.add(passage(1, at=10.0))

    assert (first, again, log.count()) == (True, False, 1)


def test_a_wristbands_passages_are_the_recent_ones_and_every_older_consuming_one(log):
    for p in [
        passage(1, at=1 * HOUR, consumed=True),  # old, but it used an entry
        passage(2, at=2 * HOUR),  # old, nothing used
        passage(3, at=30 * HOUR),
        passage(4, uid=B, at=31 * HOUR),
        passage(5, at=29 * HOUR, zone_to=None),
    ]:
        log.add(p)

    assert ids(log.of_uid(A, since=24 * HOUR)) == [1, 5, 3]  # oldest first
    assert ids(log.of_uid(C, since=0.0)) == []


def test_a_gates_own_passages_since_a_time(log):
    for p in [
        passage(1, at=1.0, gate="gate-1"),
        passage(2, at=5.0, gate="gate-2"),
        passage(3, at=9.0, gate="gate-1"),
        passage(4, at=3.0, gate="gate-1", uid=B),
    ]:
        log.add(p)

    assert ids(log.of_gate("gate-1", since=2.0)) == [4, 3]
    assert ids(log.since(4.0)) == [2, 3]


def test_pruning_keeps_the_passages_that_consumed_an_entry(log):
    for p in [
        passage(1, at=1.0, consumed=True),
        passage(2, at=2.0),
        passage(3, at=20.0),
    ]:
        log.add(p)

    pruned = log.prune(before=10.0)

    assert (pruned, ids(log.since(0.0))) == (1, [1, 3])


# ------------------------------------------------------------------------- occupancy


@pytest.mark.parametrize(
    ("seen", "inside"),
    [
        pytest.param([passage(1, at=1.0)], {"facility": 1}, id="in"),
        pytest.param(
            [passage(1, at=1.0), passage(2, at=2.0, zone_from="facility", zone_to="pool")],
            {"pool": 1},
            id="moves-deeper",
        ),
        pytest.param(
            [passage(1, at=1.0), passage(2, at=2.0, zone_from="facility", zone_to=None)],
            {},
            id="leaves",
        ),
        pytest.param(
            [passage(2, at=2.0, zone_from="facility", zone_to="pool"), passage(1, at=1.0)],
            {"pool": 1},
            id="an-older-passage-heard-late-is-ignored",
        ),
        pytest.param([passage(1, at=1.0), passage(1, at=1.0)], {"facility": 1}, id="heard-twice"),
        pytest.param(
            [
                passage(1, uid=A, at=1.0, zone_to="sauna"),
                passage(2, uid=B, at=1.0, zone_to="pool"),
                passage(3, uid=C, at=1.0, zone_to="pool"),
            ],
            {"sauna": 1, "pool": 2},
            id="each-counted-in-its-innermost-zone",
        ),
    ],
)
def test_occupancy_follows_each_wristbands_latest_passage(seen, inside):
    occupancy = Occupancy(ttl=HOUR)

    for p in seen:
        occupancy.observe(p)

    assert occupancy.innermost() == inside


def test_a_wristband_not_seen_within_the_ttl_no_longer_counts():
    occupancy = Occupancy(ttl=HOUR)
    occupancy.observe(passage(1, uid=A, at=0.0))
    occupancy.observe(passage(2, uid=B, at=0.5 * HOUR, zone_to="pool"))

    gone = occupancy.expire(now=1.2 * HOUR)

    assert (gone, occupancy.innermost()) == (1, {"pool": 1})
    assert occupancy.expire(now=1.2 * HOUR) == 0


def test_a_wristband_back_after_expiry_counts_again():
    occupancy = Occupancy(ttl=HOUR)
    occupancy.observe(passage(1, at=0.0))
    occupancy.expire(now=2 * HOUR)

    occupancy.observe(passage(2, at=2 * HOUR, zone_to="pool"))

    assert occupancy.innermost() == {"pool": 1}


def test_a_damaged_row_costs_one_passage_not_the_lookup(log, tmp_path):
    log.add(passage(1, at=1.0))
    log.add(passage(2, at=2.0))
    db = sqlite3.connect(tmp_path / "device.db")
    with db:
        db.execute("UPDATE passages SET data = '{\"id\": 1}' WHERE at = 1.0")
    db.close()

    assert ids(log.of_uid(A, since=0.0)) == [2]
