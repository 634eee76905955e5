"""One exception hierarchy for all of Entrada.

Library errors are translated once, at the boundary where they happen (a driver, the
MQTT link, a payload parser), with ``raise ... from err`` so the cause stays visible.
"""


class EntradaError(Exception):
    """Root of every error Entrada raises on purpose."""


class ConfigError(EntradaError):
    """A config document is invalid; ``errors`` lists every problem found, not just the first."""

    def __init__(self, errors: list[str], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{where}{len(self.errors)} config error(s):\n{lines}")


class ProtocolError(EntradaError):
    """A message on the wire does not follow the contract (bad JSON, schema, size, encoding)."""


class DriverError(EntradaError):
    """A hardware driver failed: device missing, bus error, reader not answering."""


class StoreError(EntradaError):
    """The local or central store is missing, corrupt or refused a write."""
