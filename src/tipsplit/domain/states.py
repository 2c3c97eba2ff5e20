"""Payment and leg states: where a payment and each of its outgoing legs stand."""

from enum import StrEnum


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
