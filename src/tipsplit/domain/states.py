"""Payment and leg states: where a payment and each of its outgoing legs stand."""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType


class PaymentStatus(StrEnum):
    """Where a POS payment stands. Only the settlement engine moves it, by conditional UPDATE."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


FINAL_PAYMENT_STATUSES = frozenset({PaymentStatus.COMPLETED, PaymentStatus.FAILED, PaymentStatus.EXPIRED})


class LegStatus(StrEnum):
    """One outgoing transfer (the base, or one tip).

    `invoiced` means the destination invoice exists and its hash is stored, so
    any retry pays that same invoice; `paying` means a send was attempted and
    its outcome must be learned from Blink before anything else happens.
    """

    PENDING = "pending"
    INVOICED = "invoiced"
    PAYING = "paying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


FINAL_LEG_STATUSES = frozenset({LegStatus.SUCCEEDED, LegStatus.SKIPPED})

_P = PaymentStatus
_L = LegStatus

# Which statuses a payment may move from into each status. The store passes these sets to PostgreSQL as
# parameters (`status = ANY($n)`), so a guard is written once, here. A `processing` payment whose claim lease
# lapsed counts as unclaimed: it may be claimed (or failed unclaimed) again, a time check the store adds.
PAYMENT_MOVES: Mapping[PaymentStatus, frozenset[PaymentStatus]] = MappingProxyType({
    _P.PENDING: frozenset({_P.PROCESSING}),
    _P.PROCESSING: frozenset({_P.PENDING, _P.EXPIRED, _P.FAILED, _P.PROCESSING}),
    _P.COMPLETED: frozenset({_P.PROCESSING}),
    _P.FAILED: frozenset({_P.PROCESSING, _P.PENDING, _P.EXPIRED, _P.FAILED}),
    _P.EXPIRED: frozenset({_P.PROCESSING, _P.PENDING}),
})
# The guard of each operation on a payment, each within PAYMENT_MOVES.
# Claimed by whoever asks (and `failed` too when retrying is asked for).
CLAIMABLE = frozenset({_P.PENDING, _P.EXPIRED})
RECLAIMABLE = CLAIMABLE | {_P.FAILED}
# Held by a claim: only its owner renews, releases, marks paid, completes or fails it.
CLAIMED = frozenset({_P.PROCESSING})
# Where a claim may be released to (not paid yet, invoice expired, given up).
RELEASE_TARGETS = frozenset({_P.PENDING, _P.EXPIRED, _P.FAILED})
# An unclaimed payment whose invoice expired is archived as expired from here only.
EXPIRABLE = frozenset({_P.PENDING})
# An operator may reset the legs of a payment only while it is failed.
LEGS_RESETTABLE = frozenset({_P.FAILED})

# Which statuses a leg may move from into each status. A leg is created `pending` or `skipped` and never moves
# into `skipped`; `succeeded` and `skipped` are final. A caller names the statuses it expects the leg in, and
# the store moves it only from those that this table also allows.
LEG_MOVES: Mapping[LegStatus, frozenset[LegStatus]] = MappingProxyType({
    _L.PENDING: frozenset({_L.FAILED}),
    _L.INVOICED: frozenset({_L.PENDING, _L.INVOICED, _L.PAYING, _L.FAILED}),
    _L.PAYING: frozenset({_L.PENDING, _L.INVOICED, _L.FAILED}),
    _L.SUCCEEDED: frozenset({_L.PENDING, _L.INVOICED, _L.PAYING, _L.FAILED}),
    _L.FAILED: frozenset({_L.PENDING, _L.INVOICED, _L.PAYING, _L.FAILED}),
    _L.SKIPPED: frozenset(),
})
# A leg with no destination invoice yet: its wallet may be resolved in these, it may wait in `pending`.
LEG_WALLET_SETTABLE = frozenset({_L.PENDING, _L.FAILED})
LEG_WAITABLE = frozenset({_L.PENDING})
# The legs an operator's retry gives fresh attempts.
LEGS_RESET = frozenset({_L.FAILED})


def payment_moves_from(target: PaymentStatus, statuses: Iterable[PaymentStatus]) -> list[str]:
    """The given statuses a payment may leave for `target`, as values for a SQL `status = ANY($n)` parameter."""
    allowed = PAYMENT_MOVES[PaymentStatus(target)]
    return sorted(s.value for s in map(PaymentStatus, statuses) if s in allowed)


def leg_moves_from(target: LegStatus, statuses: Iterable[LegStatus]) -> list[str]:
    """The given statuses a leg may leave for `target`, as values for a SQL `status = ANY($n)` parameter."""
    allowed = LEG_MOVES[LegStatus(target)]
    return sorted(s.value for s in map(LegStatus, statuses) if s in allowed)


def values(statuses: Iterable[StrEnum]) -> list[str]:
    """Statuses as a SQL array parameter."""
    return sorted(s.value for s in statuses)


class WalletCurrency(StrEnum):
    """What a destination wallet holds: sats (BTC), or US cents (USD, Blink's Stablesats) bought with the leg's sats."""

    BTC = "BTC"
    USD = "USD"


BASE_LEG = "base"


def tip_leg(index: int) -> str:
    """Name of the n-th tip leg, counted from 1."""
    if index < 1:
        raise ValueError("tip legs are numbered from 1")
    return f"tip:{index}"
