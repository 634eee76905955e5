"""Exact money: integer minor units and an ISO 4217 currency code, never floats."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from controller.rules.errors import CurrencyMismatch, RulesInputError

_CURRENCY = re.compile(r"^[A-Z]{3}$")

#: Minor-unit exponents that differ from the usual 2 (ISO 4217).
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "HUF": 2, "BHD": 3, "KWD": 3, "OMR": 3}


def check_currency(currency: object) -> str:
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise RulesInputError(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
    return currency


def check_minor(amount: object, what: str = "amount_minor") -> int:
    """An amount in minor units: a plain int (bool and float are refused)."""
    if type(amount) is not int:
        raise RulesInputError(f"{what} must be an int in minor units, got {amount!r}")
    return amount


def exponent(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 unless ISO says otherwise)."""
    return _EXPONENTS.get(currency, 2)


def format_minor(amount_minor: int, currency: str) -> str:
    """``1250, "PLN"`` -> ``"12.50"`` (no currency, no locale: a screen adds those)."""
    digits = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


@dataclass(frozen=True)
class Money:
    """An amount of ``currency`` in its minor units (grosz, cent)."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_minor(self.amount_minor)
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def times(self, n: int) -> Money:
        return Money(self.amount_minor * check_minor(n, "multiplier"), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def decimal(self) -> str:
        """``"12.50"`` for 1250 PLN."""
        return format_minor(self.amount_minor, self.currency)

    def __str__(self) -> str:
        return f"{self.decimal()} {self.currency}"


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Sum of ``amounts``, all in ``currency`` (zero when there are none)."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
