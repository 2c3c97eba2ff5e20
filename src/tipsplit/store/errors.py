"""What the store raises, so callers can tell "try later" from "this input is wrong"."""


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StorageUnavailable(StoreError):
    """PostgreSQL cannot be reached (and no durable fallback took the write)."""


class HotStoreUnavailable(StoreError):
    """Redis cannot be reached; callers carry on with PostgreSQL alone."""


class InvalidTipData(StoreError, ValueError):
    """The tip data breaks a rule (amounts, shares, memo); nothing was stored."""


class InvalidPaymentHash(StoreError, ValueError):
    """A payment hash is not 64 hexadecimal characters."""


class PaymentConflict(StoreError, ValueError):
    """A payment hash is already stored with different amounts or destinations."""


class PaymentStateError(StoreError):
    """The payment is not in a state that allows the requested step (e.g. completing with unpaid legs)."""
