"""The central service's declared config schema (docs/config.md is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from central.api_settings import ApiSection
from central.queue.settings import QueueSection
from entrada.config import Section, option, section
from entrada.protocol import MAX_PAGE_CHANGES
from entrada.settings_common import SITE_ID, LogSection, MqttSection, SimTimeSection


class CentralSection(Section):
    site: str = SITE_ID
    data_dir: Path = option(
        Path("/var/lib/entrada-central"), "Folder for the central store.", lax=True
    )
    store: Literal["sqlite"] = option(
        "sqlite", "Storage backend (PostgreSQL implements the same interface later)."
    )
    client_id: str = option("central", "MQTT client id and default username.")
    signing_key: Path | None = option(
        None,
        "The site's config-signing private key (`site_signing.key`, PEM, mode 0600; made by "
        "`entrada site init`, shipped in central's provisioned bundle). Central signs each "
        "device's desired config with it. Unset: desired configs are kept but not published.",
        lax=True,
        example="/etc/entrada/site_signing.key",
    )
    clock: Literal["system", "sim"] = option(
        "system",
        "`sim`: wall time follows `[simtime]` (the demo's and the scenario tests' simulated "
        "day); never on a real site.",
    )


class IngestSection(Section):
    """How events are stored and acknowledged."""

    batch_max: int = option(5000, "Most events committed in one transaction.", ge=1, le=100000)
    batch_window: float = option(
        0.0,
        "Longest wait for more messages before a commit. 0: commit what is queued at once "
        "(under load batches fill by themselves; waiting only adds latency when idle).",
        unit="s",
        ge=0.0,
        le=5,
    )
    synchronous: Literal["NORMAL", "FULL"] = option(
        "FULL", "SQLite fsync level for commits (FULL survives power loss)."
    )


class RegistrySection(Section):
    offline_after: float = option(
        60.0, "Report a device stale when silent this long while online.", unit="s", ge=1
    )


class CatalogSection(Section):
    """How the catalog is served to devices and how much of its change log is kept."""

    page_size: int = option(
        MAX_PAGE_CHANGES,
        "Most changes (or snapshot rows) in one catalog page; a device may ask for fewer. "
        "A page is also cut to fit the MQTT payload limit (1 MiB).",
        ge=1,
        le=MAX_PAGE_CHANGES,
    )
    snapshot_after: int = option(
        100_000,
        "A device more than this many versions behind the head gets a snapshot of the "
        "current catalog instead of every change since its version (also one behind the "
        "compacted part of the change log).",
        ge=1,
        le=1_000_000_000,
    )
    keep_versions: int = option(
        500_000,
        "Newest change-log entries kept; older ones are compacted away every few minutes. "
        "Rules documents are kept for good whatever this says.",
        ge=1000,
        le=1_000_000_000,
    )


class ReplaySection(Section):
    """Replaying the decisions gates made without central, to report conflicts."""

    settle: float = option(
        300.0,
        "Wait this long after an offline decision reaches central before replaying it, so "
        "the passages other gates made during the same outage arrive first.",
        unit="s",
        ge=0,
        le=86400,
    )
    every: float = option(5.0, "How often to look for decisions to replay.", unit="s", ge=0.1)


class CentralConfig(Section):
    """The whole central config file."""

    central: CentralSection
    mqtt: MqttSection = section(MqttSection)
    ingest: IngestSection = section(IngestSection)
    registry: RegistrySection = section(RegistrySection)
    catalog: CatalogSection = section(CatalogSection)
    replay: ReplaySection = section(ReplaySection)
    api: ApiSection = section(ApiSection)
    queue: QueueSection = section(QueueSection)
    simtime: SimTimeSection = section(SimTimeSection)
    log: LogSection = section(LogSection)
