import pytest

from controller.rules.errors import CurrencyMismatch, RulesInputError
from controller.rules.money import Money, format_minor, total


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1250, "PLN", "12.50"),
        (5, "EUR", "0.05"),
        (0, "PLN", "0.00"),
        (1500, "JPY", "1500"),
        (-75, "PLN", "-0.75"),
        (12345, "KWD", "12.345"),
    ],
)
def test_format_minor(minor, currency, text):
    assert format_minor(minor, currency) == text


def test_arithmetic_is_exact_and_checks_the_currency():
    assert Money(1250, "PLN") + Money(750, "PLN") == Money(2000, "PLN")
    assert Money(2000, "PLN") - Money(1250, "PLN") == Money(750, "PLN")
    assert Money(500, "PLN").times(3) == Money(1500, "PLN")
    assert total([Money(1, "PLN")] * 3, "PLN") == Money(3, "PLN")
    assert total([], "EUR") == Money(0, "EUR")
    assert str(Money(1250, "PLN")) == "12.50 PLN"
    assert Money(1, "PLN") < Money(2, "PLN") <= Money(2, "PLN")
    with pytest.raises(CurrencyMismatch):
        Money(1, "PLN") + Money(1, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency"), [(12.5, "PLN"), (True, "PLN"), ("12", "PLN"), (1, "pln"), (1, "PLNX")]
)
def test_floats_bools_strings_and_bad_currencies_are_refused(amount, currency):
    with pytest.raises(RulesInputError):
        Money(amount, currency)
