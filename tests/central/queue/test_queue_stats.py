"""Statistics per service, counter and staff, and the wait estimate."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from central_queue_rig import Rig

from central.queue.model import Outcome, TicketKind, Visit
from central.queue.ops import CallNext, FinishService, NoShow, SignIn, StartService
from central.queue.stats import figures


@pytest.fixture
def day() -> Rig:
    """Two registrations and a payment at 09:00 local (Warsaw); see the test for times."""
    r = Rig()
    r.open("c1", "c2")
    r.at(0).walk_in("reg")
    r.at(60).walk_in("reg")
    r.at(120).walk_in("pay")
    r.at(300)(CallNext, counter="c1")  # the first reg: waited 300 s
    r.at(330)(StartService, counter="c1")
    r.at(630)(FinishService, counter="c1")  # 300 s of service
    r.at(400)(CallNext, counter="c2")  # the payment: waited 280 s
    r.at(500)(NoShow, counter="c2")
    r.at(700)(CallNext, counter="c1")  # the second reg: waited 640 s (target 600)
    r.at(820)(FinishService, counter="c1")  # 120 s counted from the call
    return r


def test_per_service(day: Rig) -> None:
    stats = day.engine.stats("service")
    reg, pay = stats["reg"], stats["pay"]
    assert (reg.tickets, reg.served, reg.no_shows) == (2, 2, 0)
    assert (reg.wait_mean, reg.wait_median, reg.wait_p90, reg.wait_max) == (470, 470, 640, 640)
    assert (reg.service_mean, reg.service_median, reg.service_p90) == (210, 210, 300)
    assert reg.within_target == 0.5
    assert (pay.tickets, pay.served, pay.no_shows, pay.wait_mean) == (1, 0, 1, 280)
    assert pay.service_mean is None and pay.within_target == 1.0
    assert reg.arrivals_by_hour[9] == 2 and sum(reg.arrivals_by_hour) == 2  # 09:xx local
    assert reg.served_by_hour[9] == 2


def test_per_counter_and_staff(day: Rig) -> None:
    counters = day.engine.stats("counter")
    assert set(counters) == {"c1", "c2"}
    assert (counters["c1"].served, counters["c2"].no_shows) == (2, 1)
    staff = day.engine.stats("staff", day=date(2026, 3, 10))
    assert staff["staff-c1"].service_mean == 210
    assert day.engine.stats("staff", day=date(2026, 3, 9)) == {}


def test_hourly_load_is_in_site_local_hours() -> None:
    # 23:30 in New York is 03:30 UTC the next day: it counts at 23, on the local day
    at = datetime(2026, 3, 11, 3, 30, tzinfo=UTC).timestamp()
    visit = Visit(
        key="t/1",
        day=date(2026, 3, 10),
        ticket_id="t",
        service="reg",
        kind=TicketKind.NORMAL,
        issued_at=at,
        queued_at=at,
        called_at=at + 60,
        ended_at=at + 120,
        outcome=Outcome.FINISHED,
    )
    f = figures([visit], "America/New_York", {"reg": 600.0})
    assert f.arrivals_by_hour[23] == 1 and f.served_by_hour[23] == 1
    assert f.within_target == 1.0


def test_transfers_count_in_each_service() -> None:
    from central.queue.ops import Transfer

    r = Rig()
    r.open("c1")
    tid = r.walk_in("reg")
    r.at(100)(CallNext, counter="c1")
    r.at(160)(Transfer, ticket_id=tid, to_service="pay")
    r.at(200)(CallNext, counter="c1")
    r.at(260)(FinishService, counter="c1")
    stats = r.engine.stats("service")
    assert (stats["reg"].transferred, stats["reg"].service_mean) == (1, 60)
    assert (stats["pay"].served, stats["pay"].wait_mean) == (1, 40)  # waited from 160


# ------------------------------------------------------------------------- estimates


def wait_for(r: Rig, service: str = "reg") -> int | None:
    load = r.engine.service_load(service, r.now)
    assert load is not None
    return load.estimated_wait


def test_estimate_without_history_uses_the_configured_service_time() -> None:
    r = Rig()
    r.open("c1", "c3")
    for i in range(5):
        r.at(i).walk_in("reg")
    r.walk_in("pay")
    # c1 gives reg 2/3 of its time (pay waits too), c3 all of it: 5/3 counters at 300 s
    assert wait_for(r) == 900
    # pay: c2 is closed, c1 gives it 1/3 of its time: one ahead / ((1/3) / 120 s)
    assert wait_for(r, "pay") == 360


def test_estimate_with_recent_history() -> None:
    r = Rig()
    r.open("c3")
    for i in range(3):
        r.at(i).walk_in("reg")
    for i in range(3):  # each ticket takes 100 s from call to finish
        r.at(1000 + 200 * i)(CallNext, counter="c3")
        r.at(1100 + 200 * i)(FinishService, counter="c3")
    for i in range(4):
        r.at(1700 + i).walk_in("reg")
    assert wait_for(r) == 400  # 4 ahead at 1 per 100 s of work
    r.at(1700 + 1800 + 200)  # the history is older than estimate_window now
    assert wait_for(r) == 1200  # back to 300 s a ticket


def test_estimate_before_opening_counts_every_counter_of_the_service() -> None:
    r = Rig()
    for _ in range(3):
        r.walk_in("pay")
    # nobody is signed in: c1 (reg is idle, so all of its time) and c2
    assert wait_for(r, "pay") == 180  # 3 ahead, two counters at 120 s
    r(SignIn, counter="c2", staff="bob")
    assert wait_for(r, "pay") == 360  # only the open one counts
