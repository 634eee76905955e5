"""A day at an aquapark, with whole daemons: central, a broker and four tariff gates.

Gates: ``entry`` (outside -> pool hall), ``sauna-in`` and ``sauna-out`` (pool <-> sauna),
``exit`` (pool hall -> outside, it collects the wristband and pays back its deposit). The
gates run on simulated clocks, moved through the day by the test. In the middle the broker
is down for an hour of the site's time: the gates decide alone (offline policies apply
after 30 minutes), payments cannot reach them, and a wristband blocked at central in the
meantime still gets in. When the broker is back everything flows: central holds every
passage, every euro charged is matched by a payment or a deposit, and central's replay
reports the one admission it would have refused.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from entrada.site import GateSpec, Site, wait_until

pytestmark = pytest.mark.scenario

TZ = ZoneInfo("Europe/Berlin")
DEPOSIT = 1000

RULES = {
    "site": {"id": "aqua", "tz": "Europe/Berlin", "currency": "EUR", "passback_minutes": 2},
    "zones": [
        {"id": "facility", "capacity": 500},
        {"id": "pool", "parent": "facility"},
        {"id": "sauna", "parent": "pool", "capacity": 3},
    ],
    "tariffs": [
        {
            "id": "2h",
            "zones": ["facility", "pool"],
            "entries": 1,
            "stay": {
                "facility": {
                    "included_minutes": 120,
                    "interval_minutes": 15,
                    "grace_minutes": 5,
                    "rate": {"prices": {"adult": 400}},
                }
            },
            "offline": {"after_minutes": 30, "mode": "admit", "budget": 1},
        },
        {
            "id": "day",
            "zones": ["facility", "pool", "sauna"],
            "entries": 1,
            "stay": {"sauna": {"interval_minutes": 30, "rate": {"prices": {"adult": 600}}}},
            "offline": {"after_minutes": 30, "mode": "admit"},
        },
    ],
}

A = [f"04A0{i:010X}" for i in range(8)]  # 2 h, leave in time
B = [f"04B0{i:010X}" for i in range(3)]  # 2 h, overtime
C = [f"04C0{i:010X}" for i in range(4)]  # day ticket with sauna
D, E = "04D00000000001", "04E00000000001"  # arrive while the broker is down
EVERYONE = A + B + C + [D, E]


def at(hhmm: str) -> float:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 7, 1, hour, minute, tzinfo=TZ).timestamp()


@pytest.fixture
def site(tmp_path):
    spec = {"admission": "tariffs", "clock": "sim"}
    s = Site(
        tmp_path,
        [
            GateSpec("entry", "in", zone_to="pool", **spec),
            GateSpec("sauna-in", "in", zone_from="pool", zone_to="sauna", **spec),
            GateSpec("sauna-out", "out", zone_from="sauna", zone_to="pool", **spec),
            GateSpec("exit", "out", zone_from="pool", collects_media=True, **spec),
        ],
        site_id="aqua",
        relay_pulse=0.05,
    )
    s.start()
    yield s
    s.stop()


def passages(site: Site) -> list[dict]:
    return [e["data"] for e in site.central_events() if e["kind"] == "gate.passage"]


def outcomes(site: Site, gate: str) -> Counter[str]:
    return Counter(
        e["data"]["outcome"]
        for e in site.central_events()
        if e["device"] == gate and e["kind"] in ("gate.passage", "gate.denied")
    )


def test_a_day_at_the_aquapark(site):
    site.set_time(at("09:00"))
    site.seed_catalog([(uid, "active", None) for uid in EVERYONE])
    site.publish_rules(RULES)
    tickets = {uid: site.entitle(uid, "2h", now=at("09:00"))[0] for uid in A + B + [D, E]}
    for uid in C:
        site.entitle(uid, "day", now=at("09:00"))
    head = _deposits(site)
    site.wait_catalog(head)

    # 10:00 everyone but D and E comes in; A0 tries again at once (anti-passback)
    site.set_time(at("10:00"))
    for uid in A + B + C:
        site.tap_and_wait("entry", uid)
    site.set_time(at("10:01"))
    site.tap_and_wait("entry", A[0])
    site.wait_passages(len(A + B + C))

    # 10:30 the sauna holds three: the fourth day ticket waits
    site.set_time(at("10:30"))
    for uid in C:
        site.tap_and_wait("sauna-in", uid)
    site.post(C[0], 1250, at("10:40"), "bar")
    # 10:59 out of the sauna: one started half hour each (the clocks run on: every tap
    # comes a moment after the time set, so no stay here ends on a billing boundary)
    site.set_time(at("10:59"))
    for uid in C[:3]:
        site.tap_and_wait("sauna-out", uid)
    # 11:30 the A group leaves in time and gets its deposits back
    site.set_time(at("11:30"))
    for uid in A:
        site.tap_and_wait("exit", uid)
    assert site.wait_drained(30)

    # 11:40 the broker goes down for an hour; meanwhile E's ticket is refunded at central
    site.broker.kill()
    site.set_time(at("11:40"))
    _cancel(site, tickets[E])
    site.set_time(at("12:20"))  # 40 min without central: offline policies apply
    site.tap_and_wait("entry", D)
    site.tap_and_wait("entry", E)  # granted offline: the refund has not reached the gate
    site.set_time(at("12:29"))
    site.tap_and_wait("exit", B[0])  # 29 min over 2 h: 2 started quarters -> 8.00, deposit
    site.tap_and_wait("exit", B[1])
    site.set_time(at("12:40"))

    site.broker.start()
    assert site.wait_drained(60)
    # B0 and B1 left on their deposits; B2 stays until 13:08: 68 min over, 5 quarters
    site.set_time(at("13:08"))
    site.tap_and_wait("exit", B[2])  # 20.00 > the deposit: refused
    site.tap_and_wait("exit", C[0])  # bar 12.50 + sauna 6.00 > the deposit: refused
    site.pay(B[2], 1000, at("13:09"))
    site.wait_catalog(site.pay(C[0], 850, at("13:09")))
    site.set_time(at("13:12"))  # still 5 quarters for B2
    for uid in [B[2], C[0], C[1], C[2], C[3], D, E]:
        site.tap_and_wait("exit", uid)
    assert site.wait_drained(60)

    # every entry and every exit is at central, once
    done = passages(site)
    entries = Counter(p["uid"] for p in done if p["passage"]["zone_from"] is None)
    exits = Counter(p["uid"] for p in done if p["passage"]["settled"])
    assert entries == Counter(EVERYONE)
    assert exits == Counter(EVERYONE)
    assert outcomes(site, "entry")["denied.passback"] == 1
    assert outcomes(site, "sauna-in")["denied.capacity"] == 1
    assert outcomes(site, "exit")["denied.owing"] == 2
    ledger = site.ledger()
    assert (ledger["events_lost"], ledger["events_duplicated"]) == (0, 0)

    # every euro: what the exits settled is what was paid plus what the deposits covered
    settled = [p["decision"] for p in done if p["passage"]["settled"]]
    charged = sum(c["amount_minor"] for d in settled for c in d["charges"])
    applied = sum(
        c["amount_minor"] for d in settled for c in d["credits"] if c["code"] == "deposit.applied"
    )
    refunded = sum(
        c["amount_minor"] for d in settled for c in d["credits"] if c["code"] == "deposit.refund"
    )
    assert charged == 800 + 800 + 2000 + (1250 + 600) + 600 + 600
    assert applied == charged - (1000 + 850)
    assert applied + refunded == DEPOSIT * len(EVERYONE)

    # central replayed the offline admissions: E's would have been refused
    assert wait_until(lambda: len(site.conflicts()) >= 1, 30)
    (conflict,) = site.conflicts()
    assert (conflict["uid"], conflict["replay_code"]) == (E, "denied.no_entitlement")


def _deposits(site: Site) -> int:
    from central.sqlite_store import SqliteStorage
    from central.store import WristbandRow

    with SqliteStorage(site.central_db()) as store:
        return store.catalog_upsert_wristbands(
            [WristbandRow(uid, "active", None, None, deposit_minor=DEPOSIT) for uid in EVERYONE],
            at("09:00"),
        )


def _cancel(site: Site, entitlement: str) -> None:
    from central.sqlite_store import SqliteStorage

    with SqliteStorage(site.central_db()) as store:
        store.catalog_apply([("entitlement", entitlement, None)], at("11:45"))
