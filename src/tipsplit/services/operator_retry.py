"""An operator's retry of a failed payment: the one path shared by `tipsplit payments retry` and the dashboard.

A failed payment is final: the service does not take it up again on its own. A retry gives its failed legs
fresh attempts and settles it at once. Safety is the settler's: each failed leg is resumed by asking Blink
about the destination invoice it already stored, so a retry can finish a payment but never pay a leg twice.
If a leg fails again, the payment stays `processing` and the reconciler retries it with backoff until the
fresh attempts are used up, when it is `failed` again.
"""

from dataclasses import dataclass

from tipsplit.domain.records import PaymentRecord
from tipsplit.domain.states import PaymentStatus
from tipsplit.services.settlement import Outcome, Settler
from tipsplit.store.postgres import PostgresStore

REFUSALS = {
    PaymentStatus.COMPLETED: "it is completed: every leg is paid, so a retry could only pay twice",
    PaymentStatus.PENDING: "it is pending: the POS invoice is not paid yet and the service settles it once it is",
    PaymentStatus.PROCESSING: "it is being settled right now (claimed by {owner}); let that settlement finish",
    PaymentStatus.EXPIRED: "it expired unpaid: there is nothing to forward",
}


class RetryRefused(Exception):
    """The payment is unknown or not `failed`; the message says why in an operator's words."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True)
class RetryResult:
    outcome: Outcome
    payment: PaymentRecord

    @property
    def completed(self) -> bool:
        return self.outcome in (Outcome.COMPLETED, Outcome.ALREADY_COMPLETED)


async def _reset_for_retry(pg: PostgresStore, payment_hash: str, reason: str) -> None:
    """Refuse anything but a stored `failed` payment, then give its failed legs fresh attempts."""
    payment = await pg.payments.get(payment_hash, with_legs=False)
    if payment is None:
        raise RetryRefused(f"payment {payment_hash} is not stored", unknown=True)
    if payment.status is not PaymentStatus.FAILED:
        why = REFUSALS[payment.status].format(owner=payment.claim_owner)
        raise RetryRefused(f"refusing to retry {payment_hash}: {why}")
    await pg.legs.reset_failed(payment_hash, reason)


async def retry_failed_payment(pg: PostgresStore, settler: Settler, payment_hash: str, reason: str) -> RetryResult:
    """Reset a failed payment's failed legs and settle it now; raises RetryRefused for any other payment."""
    await _reset_for_retry(pg, payment_hash, reason)
    result = await settler.settle(payment_hash, allow_failed=True)
    after = await pg.payments.get(payment_hash)
    if after is None:
        raise RetryRefused(f"payment {payment_hash} is not stored", unknown=True)
    return RetryResult(result.outcome, after)
