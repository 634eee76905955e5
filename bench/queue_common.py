"""The queue benchmarks' site: a private broker and a real central with a ``[queue]``, and
the configs of their dispenser and display board (see bench/common.py for the rest)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common

if TYPE_CHECKING:
    from central.service import CentralService
    from central.settings import CentralConfig
    from controller.settings import DeviceConfig
    from entrada.broker import PrivateBroker

#: Central's [queue] in the queue benchmarks: two services, three counters (c1 serves both;
#: number ranges wide enough for any run).
QUEUE: dict[str, Any] = {
    "timezone": "Europe/Warsaw",
    "site_name": "Town Hall",
    "services": [
        {"id": "A", "name": "Passports", "prefix": "A", "last": 99_999},
        {"id": "B", "name": "Permits", "prefix": "B", "last": 99_999},
    ],
    "counters": [
        {"id": "c1", "name": "1", "services": {"A": 1.0, "B": 1.0}},
        {"id": "c2", "name": "2", "services": {"A": 1.0}},
        {"id": "c3", "name": "3", "services": {"B": 1.0}},
    ],
}


def queue_central_config(workdir: Path, port: int, **queue: Any) -> CentralConfig:
    """Central's config with :data:`QUEUE` as its ``[queue]``, the keys of ``queue`` added
    to it or replacing its own."""
    from central.settings import CentralConfig
    from entrada import config as entrada_config

    doc = common.central_config_doc(workdir, port)
    doc["queue"] = {**QUEUE, **queue}
    return entrada_config.validate(CentralConfig, doc, "bench")


def queue_device_config(
    workdir: Path,
    port: int,
    device_id: str,
    role: str,
    section: dict[str, Any],
    drivers: dict[str, str],
) -> DeviceConfig:
    """A queue device (``role`` dispenser or display) on the private broker, as an operator
    would configure it: ``section`` is its ``[dispenser]`` or ``[display]`` table."""
    from controller.settings import DeviceConfig

    return DeviceConfig.model_validate(
        {
            "device": {
                "id": device_id,
                "site": common.SITE,
                "role": role,
                "data_dir": str(workdir / device_id),
                "run_dir": str(workdir / "run"),
            },
            "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min": 0.2},
            role: section,
            "drivers": drivers,
            "log": {"level": "WARNING"},
        }
    )


@contextlib.contextmanager
def queue_site(workdir: Path, **queue: Any) -> Iterator[tuple[PrivateBroker, CentralService]]:
    """A private broker and a central service on it, started and connected, with the
    queue config of :func:`queue_central_config`; yields ``(broker, service)`` and stops
    both (central first) when done."""
    from central.service import CentralService
    from entrada.broker import PrivateBroker

    broker = PrivateBroker(workdir)
    broker.start()
    service: CentralService | None = None
    try:
        service = CentralService(queue_central_config(workdir, broker.port, **queue))
        service.start()
        if not service.wait_ready(20):
            raise RuntimeError("central did not connect to the broker")
        yield broker, service
    finally:
        if service is not None:
            service.stop()
        broker.stop()
