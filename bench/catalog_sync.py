"""Catalog sync on a device: a full snapshot of 1,000,000 wristbands applied on a fresh store
(target <= 60 s), and a delta of 10,000 changes applied onto it (target <= 1 s).

The catalog is the one ``bench.decision_tariffs`` decides from (the example aquapark).
Two variants: ``wristbands`` (the 1,000,000 wristbands alone) and ``full`` (the same plus
1,000,000 entitlements, the open tabs' postings, payments and time-stops, and the rules).
The pages are built beforehand as central builds them (``central.catalog``): rows in
(entity, key) order, at most ``MAX_PAGE_CHANGES`` (5,000) per page, cut to the MQTT
payload limit by ``central.catalog.fit``, cursors by ``central.store.make_cursor``, JSON by
``entrada.protocol.encode``; they are kept in the cache folder. The delta is two change-log
pages of 5,000 changes in log order (mixed, at random keys: wristband updates, new
wristbands, wristband deletions, entitlement updates, new entitlements, entitlement
deletions, postings and payments), cut the same way.

Each variant runs in a fresh process, so its peak RSS is the device's alone. It opens a
fresh :class:`~controller.store.DeviceStore` (WAL, synchronous=FULL, as the gate does)
and hands every payload to :meth:`controller.catalog_sync.CatalogSync.on_reply`, the
device's own path: ``decode_one_of`` + ``apply_snapshot_page`` (each page staged in its
own transaction; the last one swaps the tables and builds the uid index) or
``apply_catalog`` for the delta. Time = the sum of ``on_reply`` per payload (reading the
file first is not counted). The process then decodes every payload again on its own, to
split decoding from applying, and reports VmHWM (peak RSS).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import common, decision_tariffs
from entrada import protocol

TARGET_SNAPSHOT_S = 60.0
TARGET_DELTA_S = 1.0
VARIANTS: dict[str, tuple[str, ...]] = {
    "wristbands": ("wristband",),
    "full": decision_tariffs.ENTITIES,
}
CHANGE_MODELS: dict[str, Any] = {
    "wristband": protocol.WristbandChange,
    "entitlement": protocol.EntitlementChange,
    "posting": protocol.PostingChange,
    "payment": protocol.PaymentChange,
    "timestop": protocol.TimeStopChange,
    "rules": protocol.RulesChange,
}


# ---------------------------------------------------------------------- the pages


def population_key() -> str:
    """Pages are cached by the population's and the protocol's source."""
    text = decision_tariffs.population_key().encode() + Path(protocol.__file__).read_bytes()
    return hashlib.sha1(text, usedforsecurity=False).hexdigest()[:10]


def change(version: int, entity: str, key: str, data: Any) -> Any:
    op = "upsert" if data is not None else "delete"
    return CHANGE_MODELS[entity](version=version, entity=entity, op=op, key=key, data=data)


def snapshot_pages(n: int, entities: tuple[str, ...]) -> Iterator[bytes]:
    """The snapshot as central pages it: 5,000 rows a page, cut to the payload limit."""
    from central.catalog import fit
    from central.store import make_cursor

    rows = [
        change(v, e, k, d)
        for v, (e, k, _uid, d) in enumerate(decision_tariffs.catalog_rows(n, entities), 1)
    ]
    as_of = len(rows)
    start, after = 0, None
    while start < len(rows):
        kept = fit(rows[start : start + protocol.MAX_PAGE_CHANGES])
        start += len(kept)
        last = kept[-1]
        nxt = make_cursor(last.entity, last.key) if start < len(rows) else None
        page = protocol.CatalogSnapshot(as_of=as_of, head=as_of, after=after, next=nxt, rows=kept)
        yield protocol.encode(page)
        after = nxt


def delta_pages(n: int, as_of: int, count: int, seed: int) -> Iterator[bytes]:
    """``count`` changes after ``as_of`` in log order, in pages as central serves them."""
    from central.catalog import fit

    rng = random.Random(seed)
    changes = []
    fresh = n
    for v in range(as_of + 1, as_of + count + 1):
        r = rng.random()
        i = rng.randrange(n)
        uid = common.known_uid(i)
        if r < 0.30:  # a wristband changes (blocked, a deposit paid)
            data = decision_tariffs.wristband_data(i, n).model_copy(
                update={"status": rng.choice(("active", "blocked", "lost"))}
            )
            changes.append(change(v, "wristband", uid, data))
        elif r < 0.40:  # a new wristband, with its ticket
            uid = common.known_uid(fresh)
            changes.append(change(v, "wristband", uid, decision_tariffs.wristband_data(fresh, n)))
            fresh += 1
        elif r < 0.50:
            changes.append(change(v, "wristband", uid, None))
        elif r < 0.75:  # usage imported from another system
            ent = decision_tariffs.entitlement_data(i, n).model_copy(update={"entries_used": 1})
            changes.append(change(v, "entitlement", f"E{i:08d}", ent))
        elif r < 0.85:
            ent = decision_tariffs.entitlement_data(i, n).model_copy(update={"tariff_id": "day"})
            changes.append(change(v, "entitlement", f"E{n + v:08d}", ent))
        elif r < 0.95:
            changes.append(change(v, "entitlement", f"E{i:08d}", None))
        elif r < 0.975:
            posting = protocol.PostingData(uid=uid, amount_minor=1200, description="bar", ts=1.0)
            changes.append(change(v, "posting", f"P{v:08d}", posting))
        else:
            payment = protocol.PaymentData(uid=uid, amount_minor=1200, method="kiosk", ts=1.0)
            changes.append(change(v, "payment", f"Y{v:08d}", payment))
    start = 0
    while start < len(changes):
        kept = fit(changes[start : start + protocol.MAX_PAGE_CHANGES])
        start += len(kept)
        page = protocol.CatalogPage(
            from_version=kept[0].version - 1,
            to_version=kept[-1].version,
            head=as_of + count,
            changes=kept,
        )
        yield protocol.encode(page)


def cached_pages(variant: str, n: int, delta: int, log: Any = print) -> Path:
    """The folder holding the variant's snapshot pages (``snap-*.json``) and delta pages
    (``delta-*.json``), built once."""
    folder = common.cache_dir() / f"catalog-pages-{variant}-{n}-{delta}-{population_key()}"
    if (folder / "done").exists():
        return folder
    log(f"   building the {variant!r} snapshot and delta pages (cached at {folder}) ...")
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    as_of = 0
    for k, payload in enumerate(snapshot_pages(n, VARIANTS[variant])):
        (folder / f"snap-{k:05d}.json").write_bytes(payload)
        as_of = int(json.loads(payload)["as_of"])
    for k, payload in enumerate(delta_pages(n, as_of, delta, seed=n)):
        (folder / f"delta-{k:05d}.json").write_bytes(payload)
    (folder / "done").write_text("")
    log(f"   built in {time.perf_counter() - t0:.1f} s")
    return folder


# --------------------------------------------------------------------- the device


def vm_hwm_mib() -> float:
    return common.proc_memory_mib(os.getpid())["VmHWM"]


def apply_worker(pages: Path, db: Path) -> dict[str, Any]:
    """Run in a fresh process: every page through the device's own catalog path."""
    from controller.catalog_sync import CatalogSync
    from controller.clock import SystemClock
    from controller.store import DeviceStore

    rss_start = vm_hwm_mib()
    store = DeviceStore(db)  # synchronous=FULL, as the gate opens it
    applied: list[bool] = []
    sync = CatalogSync(
        store,
        protocol.Topics(common.SITE),
        "gate-1",
        SystemClock(),
        lambda _topic, _payload: False,
        applied.append,
    )
    out: dict[str, Any] = {"rss_start_mib": rss_start}
    for part in ("snap", "delta"):
        files = sorted(pages.glob(f"{part}-*.json"))
        times = []
        size = 0
        for path in files:
            payload = path.read_bytes()
            size += len(payload)
            t0 = time.perf_counter()
            sync.on_reply(payload)
            times.append(time.perf_counter() - t0)
        out[part] = {
            "pages": len(files),
            "payload_mb": round(size / 1e6, 1),
            "seconds": round(sum(times), 3),
            "last_page_s": round(times[-1], 3) if times else None,
            "page_ms": common.stats_ms(times),
            "catalog_version": store.catalog_version,
            "rows": store.catalog.count(),
            "rss_hwm_mib": vm_hwm_mib(),
        }
        if part == "snap":
            out["snap"]["completed"] = applied == [True]
    store.close()
    out["store_mb"] = round(sum(p.stat().st_size for p in db.parent.glob("device.db*")) / 1e6, 1)
    for part in ("snap", "delta"):
        spent = 0.0
        for path in sorted(pages.glob(f"{part}-*.json")):
            payload = path.read_bytes()
            t0 = time.perf_counter()
            protocol.decode_one_of((protocol.CatalogPage, protocol.CatalogSnapshot), payload)
            spent += time.perf_counter() - t0
        out[part]["decode_s"] = round(spent, 3)
    return out


def run_variant(variant: str, pages: Path, wd: Path) -> dict[str, Any]:
    db = wd / variant / "device.db"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.catalog_sync", "--worker", str(pages), str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        common.quiet_logging()
        print(json.dumps(apply_worker(Path(sys.argv[2]), Path(sys.argv[3]))))
        return
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--wristbands", type=int, default=1_000_000)
    parser.add_argument("--delta", type=int, default=10_000, help="changes in the delta")
    parser.add_argument("--variants", default="wristbands,full", help="comma-separated")
    args = parser.parse_args()
    if args.quick:
        args.wristbands, args.delta = 20_000, 2_000
    common.quiet_logging()
    m = common.machine()
    common.header("catalog sync: full snapshot and delta on a device", m)
    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, Any] = {}
    with common.workdir("catalog", args.keep) as wd:
        for variant in variants:
            pages = cached_pages(variant, args.wristbands, args.delta)
            results[variant] = run_variant(variant, pages, wd)
    targets = {}
    for variant, r in results.items():
        snap, delta = r["snap"], r["delta"]
        print(
            f"-- {variant}: {snap['rows']:,} rows in {snap['pages']} pages "
            f"({snap['payload_mb']} MB of JSON); store {r['store_mb']} MB"
        )
        print(
            f"   snapshot applied in {snap['seconds']:.1f} s (decoding {snap['decode_s']:.1f} s, "
            f"staging and swap the rest; last page with the swap {snap['last_page_s']:.2f} s), "
            f"complete: {snap['completed']}"
        )
        print(common.stats_line("per snapshot page", snap["page_ms"]))
        print(
            f"   delta: {delta['rows'] - snap['rows']:+,} rows, {delta['pages']} pages "
            f"({delta['payload_mb']} MB) applied in {delta['seconds']:.3f} s "
            f"(decoding {delta['decode_s']:.3f} s), v{snap['catalog_version']} -> "
            f"v{delta['catalog_version']}"
        )
        print(
            f"   peak RSS (VmHWM) {r['rss_start_mib']} MiB at start, {snap['rss_hwm_mib']} MiB "
            f"after the snapshot, {delta['rss_hwm_mib']} MiB after the delta"
        )
        targets[f"snapshot_{variant}_le_60s"] = (
            snap["completed"] and snap["seconds"] <= TARGET_SNAPSHOT_S
        )
        targets[f"delta_{variant}_le_1s"] = delta["seconds"] <= TARGET_DELTA_S
    for name, ok in targets.items():
        print(f"   target {name}: {common.verdict(ok)}")
    common.emit(
        "catalog_sync",
        m,
        {
            "wristbands": args.wristbands,
            "delta_changes": args.delta,
            "variants": variants,
            "max_page_changes": protocol.MAX_PAGE_CHANGES,
            "store_synchronous": "FULL",
            "quick": args.quick,
        },
        results,
        targets,
    )


if __name__ == "__main__":
    main()
