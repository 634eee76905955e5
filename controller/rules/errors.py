"""Errors the rules engine raises on purpose.

A decision never raises for a visitor's situation (a used-up pass is a denial, not an
error). These are for the caller's mistakes: a naive datetime, a gate whose zones do not
match the zone tree, a catalog document that does not follow the schema.
"""

from __future__ import annotations

from entrada.errors import EntradaError


class RulesError(EntradaError):
    """Root of the rules engine's errors."""


class RulesInputError(RulesError, ValueError):
    """An input to the engine is malformed (naive time, unknown zone, float money...)."""


class CurrencyMismatch(RulesError, ValueError):
    """Two amounts in different currencies were combined."""


class CatalogError(RulesError):
    """A tariff catalog document is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} catalog error(s):\n{lines}")
