"""The ``[api]`` table of the central config: central's HTTP API (:mod:`central.api`)."""

from __future__ import annotations

from entrada.config import Section, option


class ApiSection(Section):
    """Central's HTTP API: wristband histories, offline conflicts, and tab postings,
    payments and time-stops from points of sale. It has no authentication yet: keep it on
    the loopback address, or behind a reverse proxy that authenticates."""

    enabled: bool = option(False, "Serve the HTTP API.")
    host: str = option(
        "127.0.0.1", "Address to listen on (127.0.0.1: only programs on this machine)."
    )
    port: int = option(8080, "TCP port to listen on.", ge=1, le=65535)
