"""Integer-sat tip arithmetic: base + tips always equals the invoice amount.

Shares are percentages that sum to exactly 100; the tip is divided by the
largest-remainder method so no sat is created or lost, and ties go to the
earlier recipient so the same input always gives the same split.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TipShare:
    """What one recipient gets of the tip."""

    username: str
    share: Decimal
    amount: int


def tip_from_percent(base_sats: int, tip_percent: Decimal) -> int:
    """Tip in whole sats for a percentage of the base, rounded half up."""
    if base_sats < 0:
        raise ValueError("base must not be negative")
    if tip_percent < 0:
        raise ValueError("tip percent must not be negative")
    return int((Decimal(base_sats) * tip_percent / HUNDRED).to_integral_value(rounding=ROUND_HALF_UP))


def split_tip(tip_sats: int, shares: list[tuple[str, Decimal]]) -> list[TipShare]:
    """Divide `tip_sats` by percentage shares (summing to 100) with largest remainder."""
    if tip_sats < 0:
        raise ValueError("tip must not be negative")
    if not shares:
        if tip_sats:
            raise ValueError("a tip needs at least one recipient")
        return []
    if any(share <= 0 for _, share in shares):
        raise ValueError("every share must be positive")
    if sum((share for _, share in shares), Decimal(0)) != HUNDRED:
        raise ValueError("shares must sum to 100")
    # Exact in integers: share = n/d, so recipient i is owed tip * n_i / (100 * d_i) sats; the remainders are
    # compared over a common denominator so that no float or Fraction object is needed per sale.
    ratios = [share.as_integer_ratio() for _, share in shares]
    common = math.lcm(*(d for _, d in ratios)) * 100
    owed = [tip_sats * n * (common // (100 * d)) for n, d in ratios]
    floors = [value // common for value in owed]
    left = tip_sats - sum(floors)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(owed[i] % common), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [TipShare(name, share, amount) for (name, share), amount in zip(shares, floors, strict=True)]


def equal_shares(usernames: list[str]) -> list[tuple[str, Decimal]]:
    """Shares for recipients given without weights: equal, with the rounding remainder on the first."""
    if not usernames:
        return []
    each = (HUNDRED / len(usernames)).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    first = HUNDRED - each * (len(usernames) - 1)
    return [(name, first if i == 0 else each) for i, name in enumerate(usernames)]
