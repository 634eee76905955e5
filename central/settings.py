"""The central service's declared config schema (docs/config.md is generated from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from entrada.config import Section, option, section
from entrada.settings_common import SITE_ID, LogSection, MqttSection


class CentralSection(Section):
    site: str = SITE_ID
    data_dir: Path = option(
        Path("/var/lib/entrada-central"), "Folder for the central store.", lax=True
    )
    store: Literal["sqlite"] = option(
        "sqlite", "Storage backend (PostgreSQL implements the same interface later)."
    )
    client_id: str = option("central", "MQTT client id and default username.")


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
    page_size: int = option(1000, "Changes per catalog page.", ge=1, le=5000)


class CentralConfig(Section):
    """The whole central config file."""

    central: CentralSection
    mqtt: MqttSection = section(MqttSection)
    ingest: IngestSection = section(IngestSection)
    registry: RegistrySection = section(RegistrySection)
    catalog: CatalogSection = section(CatalogSection)
    log: LogSection = section(LogSection)
