"""Prices as customers see them. Minor units per currency: cents for most, none for yen."""

from __future__ import annotations

from decimal import Decimal

MINOR_UNIT_DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0}

# 1.8.0's "faster" formatter: a lookup table of divisors that somebody built from the
# currencies they tested with. JPY is missing; every yen price raises KeyError. This is
# the bad deploy's bug: it exists only in the canary's version and only for JPY shops.
_DIVISORS_1_8 = {"USD": 100, "EUR": 100, "GBP": 100}


def display_price(minor: int, currency: str, version: str) -> str:
    if version >= "1.8":
        return f"{minor / _DIVISORS_1_8[currency]:.2f}"
    digits = MINOR_UNIT_DIGITS[currency]
    return str(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def product_currency(
    currency: str | None, shop_currency: str, *, tolerate_null: bool
) -> str | None:
    """A NULL currency is an import error. The fixed code falls back to the shop's currency;
    the code without the fix passes it on, and display_price fails on it (KeyError: None)."""
    if currency is None and tolerate_null:
        return shop_currency
    return currency
