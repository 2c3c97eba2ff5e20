"""Where payments are kept: PostgreSQL for the record, Redis for hot state, files as a fallback."""

from tipsplit.store.errors import (
    HotStoreUnavailable,
    InvalidPaymentHash,
    InvalidTipData,
    PaymentConflict,
    PaymentStateError,
    StorageUnavailable,
    StoreError,
)
from tipsplit.store.hot import HotStore, RateLimitResult
from tipsplit.store.hybrid import HybridTipStore
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.schema import apply_migrations

__all__ = [
    "HotStore",
    "HotStoreUnavailable",
    "HybridTipStore",
    "InvalidPaymentHash",
    "InvalidTipData",
    "MetricsCollector",
    "PaymentConflict",
    "PaymentStateError",
    "PostgresStore",
    "RateLimitResult",
    "StorageUnavailable",
    "StoreError",
    "apply_migrations",
]
