"""A gate whose database is corrupt or gone comes back with the catalog from central and
without losing the events still readable in its outbox."""

import sqlite3

import pytest

from entrada.site import GateSpec, Site, wait_until

pytestmark = pytest.mark.scenario

UIDS = [f"04{i:012X}" for i in range(20)]


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path, [GateSpec("gate-a", "in")], site_id="pool", relay_pulse=0.1)
    s.start()
    yield s
    s.stop()


def smash_catalog_pages(db):
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='catalog'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xa5" * page_size)


def passages(site):
    return sorted(e["data"]["uid"] for e in site.central_events() if e["kind"] == "gate.passage")


def test_corrupt_store_is_rebuilt_and_outbox_delivered(site):
    head = site.seed_catalog([(u, "active", None) for u in UIDS])
    site.wait_catalog(head)
    site.broker.kill()  # events now stay in the gate's outbox
    for u in UIDS:
        site.tap("gate-a", u)
    assert wait_until(lambda: site.gate_state("gate-a")["outbox"] == len(UIDS), 10)
    assert site.terminate("gate-a") == 0

    smash_catalog_pages(site.gate_db("gate-a"))
    site.broker.start()
    site.start_gate("gate-a")

    site.wait_catalog(head, timeout=30)  # catalog fetched again from central
    assert site.wait_drained(timeout=30)
    assert passages(site) == sorted(UIDS)
    assert list(site.gate_db("gate-a").parent.glob("device.db.corrupt-*"))


def test_missing_store_is_rebuilt_from_central(site):
    head = site.seed_catalog([(u, "active", None) for u in UIDS])
    site.wait_catalog(head)
    assert site.terminate("gate-a") == 0
    for suffix in ("", "-wal", "-shm"):
        path = site.gate_db("gate-a").with_name("device.db" + suffix)
        path.unlink(missing_ok=True)
    site.start_gate("gate-a")
    site.wait_catalog(head, timeout=30)
    site.tap("gate-a", UIDS[0])
    assert wait_until(lambda: passages(site) == [UIDS[0]], 15)
