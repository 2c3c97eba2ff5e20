from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipsplit.domain.split import equal_shares, split_tip, tip_from_percent


@st.composite
def shares(draw: st.DrawFn) -> list[tuple[str, Decimal]]:
    """Percent shares with up to two decimals that sum to exactly 100."""
    n = draw(st.integers(min_value=1, max_value=10))
    cuts = sorted(draw(st.lists(st.integers(1, 9999), min_size=n - 1, max_size=n - 1, unique=True)))
    bounds = [0, *cuts, 10000]
    parts = [bounds[i + 1] - bounds[i] for i in range(n)]
    return [(f"user{i}", Decimal(p) / 100) for i, p in enumerate(parts)]


@given(tip=st.integers(min_value=0, max_value=10**12), parts=shares())
def test_split_sums_exactly_and_is_fair(tip: int, parts: list[tuple[str, Decimal]]) -> None:
    result = split_tip(tip, parts)
    assert sum(r.amount for r in result) == tip
    for r in result:
        exact = Decimal(tip) * r.share / 100
        assert abs(Decimal(r.amount) - exact) < 1
        assert r.amount >= 0


@given(tip=st.integers(min_value=0, max_value=10**12), parts=shares())
def test_split_is_the_largest_remainder_method(tip: int, parts: list[tuple[str, Decimal]]) -> None:
    """The integer arithmetic gives exactly what largest remainder over exact fractions gives, ties to the earlier."""
    exact = [Fraction(tip) * Fraction(share) / 100 for _, share in parts]
    amounts = [int(value) for value in exact]
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - amounts[i]), i))
    for i in order[: tip - sum(amounts)]:
        amounts[i] += 1
    assert [r.amount for r in split_tip(tip, parts)] == amounts


@given(tip=st.integers(min_value=0, max_value=10**9), parts=shares())
def test_split_is_deterministic(tip: int, parts: list[tuple[str, Decimal]]) -> None:
    assert split_tip(tip, parts) == split_tip(tip, parts)


def test_ties_go_to_the_earlier_recipient() -> None:
    result = split_tip(1, [("a", Decimal(50)), ("b", Decimal(50))])
    assert [r.amount for r in result] == [1, 0]
    result = split_tip(101, [("a", Decimal(50)), ("b", Decimal(50))])
    assert [r.amount for r in result] == [51, 50]


def test_three_way_split_of_a_small_tip() -> None:
    third = Decimal("33.33")
    result = split_tip(10, [("a", Decimal("33.34")), ("b", third), ("c", third)])
    assert [r.amount for r in result] == [4, 3, 3]


@pytest.mark.parametrize(
    "parts, message",
    [
        ([("a", Decimal(60)), ("b", Decimal(30))], "sum to 100"),
        ([("a", Decimal(100)), ("b", Decimal(0))], "positive"),
        ([], "at least one recipient"),
    ],
)
def test_bad_shares_are_refused(parts: list[tuple[str, Decimal]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_tip(10, parts)


def test_negative_tip_is_refused() -> None:
    with pytest.raises(ValueError):
        split_tip(-1, [("a", Decimal(100))])


@given(base=st.integers(0, 10**12), percent=st.decimals(0, 100, places=2))
def test_tip_from_percent_rounds_half_up(base: int, percent: Decimal) -> None:
    tip = tip_from_percent(base, percent)
    exact = Decimal(base) * percent / 100
    assert abs(Decimal(tip) - exact) <= Decimal("0.5")


@given(n=st.integers(1, 10))
def test_equal_shares_sum_to_100(n: int) -> None:
    parts = equal_shares([f"u{i}" for i in range(n)])
    assert sum(share for _, share in parts) == 100
    assert len(parts) == n
