"""Everything tipsplit says to Blink: the GraphQL client, its operations, webhook checks.

Only this package speaks GraphQL; it knows nothing of splits or settlement.
"""

from tipsplit.blink.client import BlinkClient, RetryPolicy
from tipsplit.blink.errors import (
    BlinkApiError,
    BlinkAuthError,
    BlinkError,
    BlinkGraphQLError,
    BlinkNotFound,
    BlinkOutcomeUnknown,
    BlinkUnavailable,
)
from tipsplit.blink.types import (
    ApiErrorItem,
    Invoice,
    InvoiceStatus,
    LnUpdate,
    Me,
    PaymentResult,
    PaymentSendStatus,
    RealtimePrice,
    Wallet,
)
from tipsplit.blink.updates import Backoff, MyUpdates

__all__ = [
    "ApiErrorItem",
    "Backoff",
    "BlinkApiError",
    "BlinkAuthError",
    "BlinkClient",
    "BlinkError",
    "BlinkGraphQLError",
    "BlinkNotFound",
    "BlinkOutcomeUnknown",
    "BlinkUnavailable",
    "Invoice",
    "InvoiceStatus",
    "LnUpdate",
    "Me",
    "MyUpdates",
    "PaymentResult",
    "PaymentSendStatus",
    "RealtimePrice",
    "RetryPolicy",
    "Wallet",
]
