"""Display amounts to sats: exact, half up, right for currencies without minor units."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipsplit.blink.types import RealtimePrice

# 1 sat = 0.1 US cent (100,000 USD/BTC): base 100_000_000_000 at offset 12 is 0.1 cent.
USD = RealtimePrice("USD", 2, 100_000_000_000, 12)
# 1 sat = 0.15 yen (15,000,000 JPY/BTC); JPY has no minor unit.
JPY = RealtimePrice("JPY", 0, 150_000_000_000, 12)


@pytest.mark.parametrize(
    ("price", "amount", "sats"),
    [
        (USD, "1.00", 1000),
        (USD, "0.01", 10),
        (USD, "12.34", 12340),
        (USD, "0", 0),
        (JPY, "150", 1000),
        (JPY, "1", 7),  # 6.67 sats rounds up
        (JPY, "3", 20),
        (JPY, "1500.00", 10000),  # trailing zeros are not extra precision
    ],
)
def test_converts_display_amount_to_sats(price: RealtimePrice, amount: str, sats: int) -> None:
    assert price.sats_for(Decimal(amount)) == sats


def test_rounds_half_up() -> None:
    half_sat_per_cent = RealtimePrice("USD", 2, 2 * 10**12, 12)  # 1 sat = 2 cents
    assert half_sat_per_cent.sats_for(Decimal("0.01")) == 1  # 0.5 sat
    assert half_sat_per_cent.sats_for(Decimal("0.03")) == 2  # 1.5 sats
    assert half_sat_per_cent.sats_for(Decimal("0.05")) == 3  # 2.5 sats


@pytest.mark.parametrize(("price", "amount"), [(USD, "0.001"), (JPY, "1.5"), (JPY, "0.01")])
def test_refuses_amounts_finer_than_the_currency(price: RealtimePrice, amount: str) -> None:
    with pytest.raises(ValueError, match="fraction digits"):
        price.sats_for(Decimal(amount))


@pytest.mark.parametrize("amount", ["-1", "NaN", "Infinity"])
def test_refuses_negative_and_non_finite_amounts(amount: str) -> None:
    with pytest.raises(ValueError):
        USD.sats_for(Decimal(amount))


prices = st.builds(
    RealtimePrice,
    currency=st.just("XXX"),
    fraction_digits=st.integers(0, 3),
    sat_price_base=st.integers(1, 10**15),
    sat_price_offset=st.integers(0, 12),
)


@given(price=prices, minor_units=st.integers(0, 10**12))
def test_result_is_the_nearest_whole_sat(price: RealtimePrice, minor_units: int) -> None:
    amount = Decimal(minor_units).scaleb(-price.fraction_digits)
    sats = price.sats_for(amount)
    # exact value in sats is minor_units * 10**offset / base; the result is within half a sat of it
    exact_times_base = minor_units * 10**price.sat_price_offset
    assert abs(2 * (sats * price.sat_price_base - exact_times_base)) <= price.sat_price_base
    # and ties go up
    assert 2 * (sats * price.sat_price_base - exact_times_base) != -price.sat_price_base


@given(price=prices, a=st.integers(0, 10**9), b=st.integers(0, 10**9))
def test_conversion_is_monotonic(price: RealtimePrice, a: int, b: int) -> None:
    low, high = sorted((a, b))
    to_amount = lambda m: Decimal(m).scaleb(-price.fraction_digits)  # noqa: E731
    assert price.sats_for(to_amount(low)) <= price.sats_for(to_amount(high))


@given(price=prices, minor_units=st.integers(0, 10**9), extra=st.integers(1, 9))
def test_amounts_with_too_many_fraction_digits_are_refused(
    price: RealtimePrice, minor_units: int, extra: int
) -> None:
    amount = Decimal(minor_units * 10 + extra).scaleb(-price.fraction_digits - 1)
    with pytest.raises(ValueError):
        price.sats_for(amount)
