"""Config sections that the device daemon and the central service share."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from entrada.config import Section, option
from entrada.protocol import ID_PATTERN


class MqttSection(Section):
    """How to reach the site's MQTT broker."""

    host: str = option("127.0.0.1", "Broker host name or address.")
    port: int = option(1883, "Broker TCP port.", ge=1, le=65535)
    username: str | None = option(
        None, "MQTT username; a device's defaults to its id (the broker ACL keys on it)."
    )
    password: SecretStr | None = option(None, "MQTT password (masked when shown).")
    tls_ca: Path | None = option(None, "CA certificate file; when set, TLS is used.", lax=True)
    keepalive: int = option(15, "MQTT keepalive.", unit="s", ge=5, le=600)
    session_expiry: int = option(
        3600,
        "How long the broker keeps the session while disconnected.",
        unit="s",
        ge=0,
        le=604800,
    )
    reconnect_min: float = option(0.2, "First reconnect delay.", unit="s", ge=0.05, le=60)
    reconnect_max: float = option(
        10.0, "Longest reconnect delay (delays double, with jitter).", unit="s", ge=0.5, le=600
    )


class LogSection(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = option("INFO", "Log level.")


SITE_ID = option(..., "Site id: the second level of every topic.", pattern=ID_PATTERN)


class SimTimeSection(Section):
    """A simulated time line that every process of a simulated site shares (the demo and
    the scenario tests): with `clock = "sim"`, wall time is `origin` at the real Unix
    time `anchor` and runs `speed` times faster. Each process computes it on its own, so
    a restarted daemon is back on the same time line. Never on a real site."""

    anchor: float | None = option(
        None, "Real Unix time at which the simulated time is `origin`; unset: at start."
    )
    origin: float | None = option(None, "Simulated Unix time at `anchor`; unset: real time.")
    speed: float = option(1.0, "Simulated seconds per real second.", ge=0.001, le=100000)
