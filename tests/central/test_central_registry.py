"""The epoch rule and the registry view (pure functions, table-driven)."""

from __future__ import annotations

import pytest

from central.registry import DeviceRecord, Presence, accept_status, presence, view

# known (epoch, state), incoming (epoch, state), accepted?
EPOCH_RULE = [
    # nothing known yet: anything is news
    ((None, None), (1, "online"), True),
    ((None, None), (3, "offline"), True),
    # known only from its events (epoch 0, state unknown)
    ((0, "unknown"), (1, "online"), True),
    # newer epoch always wins, online or offline (a missed birth)
    ((2, "online"), (3, "online"), True),
    ((2, "offline"), (3, "online"), True),
    ((2, "online"), (3, "offline"), True),
    # a late will (older epoch) never overrides a newer birth
    ((3, "online"), (2, "offline"), False),
    ((3, "offline"), (2, "offline"), False),
    ((3, "offline"), (2, "online"), False),
    ((3, "online"), (2, "online"), False),
    # same epoch: the connection ended
    ((3, "online"), (3, "offline"), True),
    # same epoch: a repeated birth (fresh outbox depth, faults) is accepted
    ((3, "online"), (3, "online"), True),
    # same epoch: a redelivered birth after the will cannot revive that connection
    ((3, "offline"), (3, "online"), False),
    ((3, "offline"), (3, "offline"), True),
]


@pytest.mark.parametrize(("known", "incoming", "accepted"), EPOCH_RULE)
def test_epoch_rule(known, incoming, accepted):
    assert accept_status(*known, *incoming) is accepted


def record(state="online", last_seen=100.0, **kw):
    values = dict(
        device="gate-1",
        role="gate",
        state=state,
        epoch=4,
        versions={"software": "1.2", "config": 7, "catalog": 30},
        outbox_depth=12,
        faults=["fault.reader_down"],
        last_seen=last_seen,
        first_seen=1.0,
    )
    values.update(kw)
    return DeviceRecord(**values)


@pytest.mark.parametrize(
    ("rec", "now", "expected"),
    [
        (record("online", 100.0), 150.0, Presence.ONLINE),
        (record("online", 100.0), 160.0, Presence.ONLINE),  # exactly offline_after: not yet
        (record("online", 100.0), 160.5, Presence.STALE),
        (record("online", None), 100.0, Presence.STALE),  # online but never seen live
        (record("offline", 100.0), 1000.0, Presence.OFFLINE),
        (record("unknown", 100.0), 101.0, Presence.UNKNOWN),
    ],
)
def test_presence(rec, now, expected):
    assert presence(rec, now, offline_after=60.0) is expected


def test_view_shows_versions_depth_faults_sorted():
    rows = view([record(device="gate-2"), record(device="gate-1", last_seen=90.0)], 100.0, 60.0)

    assert [r.device for r in rows] == ["gate-1", "gate-2"]
    first = rows[0]
    assert (first.software, first.config_version, first.catalog_version) == ("1.2", 7, 30)
    assert first.outbox_depth == 12
    assert first.faults == ["fault.reader_down"]
    assert first.silent_for == 10.0
    assert first.presence is Presence.ONLINE


def test_view_without_versions():
    (row,) = view([record(versions=None)], 100.0, 60.0)
    assert row.software is None and row.config_version is None
