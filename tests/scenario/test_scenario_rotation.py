"""Whole daemons with a simulated rotation sensor: a grant counts as an entry only once the
turnstile turns. gate-a is turned by hand through the simulator channel (20 grants, 15
turns); gate-b turns by itself after every relay pulse (`auto_rotate`), and once more
with nobody granted. Central must hold every decision, every passage and every
annulment, nothing lost or duplicated."""

import subprocess
import sys
from collections import Counter

import pytest

from entrada.site import GateSpec, Site, wait_until

pytestmark = pytest.mark.scenario

BY_HAND, AUTO = 20, 10


def uid(i: int) -> str:
    return f"04{i:012X}"


@pytest.fixture
def site(tmp_path):
    s = Site(
        tmp_path,
        [
            GateSpec("gate-a", "in", rotation="sim", rotation_timeout=3.0),
            GateSpec("gate-b", "in", rotation="sim", auto_rotate=0.2),
        ],
        site_id="pool",
        relay_pulse=0.1,
    )
    s.start()
    yield s
    s.stop()


def kinds(site: Site, device: str) -> Counter[str]:
    return Counter(e["kind"] for e in site.central_events() if e["device"] == device)


def test_only_turned_grants_are_entries(site):
    head = site.seed_catalog([(uid(i), "active", None) for i in range(BY_HAND + AUTO)])
    site.wait_catalog(head, timeout=60)

    not_turned = {3, 7, 11, 15, 19}
    for i in range(BY_HAND):
        site.tap("gate-a", uid(i))
        if i not in not_turned:
            site.rotate("gate-a")
    for i in range(BY_HAND, BY_HAND + AUTO):
        site.tap("gate-b", uid(i))
    assert wait_until(lambda: kinds(site, "gate-b")["gate.passage"] == AUTO, 30)
    # nobody was let in: a tailgater (turned the way a technician would, with the CLI)
    cli = [sys.executable, "-m", "entrada.cli", "sim", "--run-dir", str(site.run_dir)]
    subprocess.run([*cli, "rotate", "gate-b"], check=True, timeout=30)

    expected_a = {"gate.granted": 20, "gate.passage": 15, "gate.annulled": 5}
    expected_b = {"gate.granted": 10, "gate.passage": 10, "gate.rotation_unexpected": 1}
    assert wait_until(lambda: kinds(site, "gate-a") == expected_a, 30), kinds(site, "gate-a")
    assert wait_until(lambda: kinds(site, "gate-b") == expected_b, 30), kinds(site, "gate-b")
    assert site.wait_drained(timeout=60), "outboxes did not drain"

    events = site.central_events()
    a = [e for e in events if e["device"] == "gate-a"]
    granted = {e["data"]["uid"] for e in a if e["kind"] == "gate.granted"}
    passed = {e["data"]["uid"] for e in a if e["kind"] == "gate.passage"}
    annulled = [e["data"] for e in a if e["kind"] == "gate.annulled"]
    assert granted == {uid(i) for i in range(BY_HAND)}
    # The sensor cannot tell who walked: a turn commits the oldest grant still waiting.
    # Every grant ends exactly once, as a passage or as an annulment.
    assert passed.isdisjoint(d["uid"] for d in annulled)
    assert passed | {d["uid"] for d in annulled} == granted
    assert all(d["reason"] == "timeout" for d in annulled)
    assert all(d["annulled_at"] - d["granted_at"] >= 3.0 for d in annulled)
    for e in a:
        if e["kind"] == "gate.passage":
            assert e["data"]["outcome"] == "granted"
            assert e["data"]["rotated_at"] >= e["data"]["granted_at"]

    ledger = site.ledger()
    assert ledger["events_emitted"] == ledger["events_stored"] == 40 + 21
    assert ledger["events_lost"] == 0
    assert ledger["events_duplicated"] == 0
