"""What the JSON API answers: one model per body, with only the fields a caller may see.

Times are ISO 8601 strings as the views render them; amounts are integer sats (a USD leg's in cents).
"""

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency

IsoTime = str


class Sparse(BaseModel):
    """An answer whose optional fields are absent, not null, when the answer does not have them."""

    # No return annotation: pydantic would document the annotation instead of the model's fields.
    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler):
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if key in self.model_fields_set}


class SplitLeg(BaseModel):
    leg: str = Field(description="`base` (the merchant) or `tip:<n>`")
    amount: int
    recipient: str | None = Field(description="the tip recipient's username; null for the base")
    share: float | None = Field(description="the recipient's share of the tip, in percent")
    skipped: bool = Field(description="a 0-sat leg is recorded but not sent")


class Split(BaseModel):
    baseAmount: int
    tipAmount: int
    tipPercent: float | None
    legs: list[SplitLeg]


class InvoiceCreated(BaseModel):
    """A POS invoice for base + tip; its payment hash is the handle for everything that follows."""

    success: Literal[True]
    paymentRequest: str = Field(description="the BOLT11 invoice the customer pays")
    paymentHash: str
    satoshis: int = Field(description="the invoice's amount: base + tip")
    expiresAt: IsoTime
    split: Split


class ForwardAnswer(Sparse):
    """Where settlement stands; `success` and `alreadyProcessed` are absent while it is still running."""

    paymentHash: str
    status: str = Field(description="the payment's status, or `processing` while settlement runs")
    success: bool | None = None
    alreadyProcessed: bool | None = None
    error: str | None = Field(default=None, description="why nothing (more) was forwarded; only on an error")


class LegView(BaseModel):
    """One transfer of a payment as the public sees it: no wallet id, no Blink error text."""

    leg: str
    recipient: str | None
    amount: int
    currency: WalletCurrency
    status: LegStatus
    attempts: int
    maxAttempts: int
    attemptsLeft: int
    retrying: bool = Field(description="failed, and will be tried again")
    waitingFor: str | None
    reason: str | None = Field(description="why the leg is not paid yet, in a cashier's words")
    completedAt: IsoTime | None


class TipShare(BaseModel):
    username: str
    share: float


class PaymentView(BaseModel):
    """A payment as anyone holding its hash may see it (also each `status` event of its stream)."""

    paymentHash: str
    status: PaymentStatus
    totalAmount: int
    baseAmount: int
    tipAmount: int
    tipPercent: float | None
    displayCurrency: str
    memo: str | None
    createdAt: IsoTime | None
    expiresAt: IsoTime | None
    paidAt: IsoTime | None
    processedAt: IsoTime | None
    error: str | None = Field(description="which legs were not forwarded and why, once the payment failed")
    tipRecipients: list[TipShare]
    legs: list[LegView]


class EventData(Sparse):
    """An audit event's public fields; whichever the event has, and no others."""

    leg: Any = None
    legs: Any = None
    amount: Any = None
    recipient: Any = None
    attempts: Any = None
    result: Any = None
    status: Any = None


class EventView(BaseModel):
    id: int
    type: str
    data: EventData
    at: IsoTime | None


class PaymentStatusAnswer(PaymentView):
    """The payment and its public audit trail."""

    events: list[EventView]


class Check(Sparse):
    status: Literal["up", "down", "disabled"]
    latencyMs: float | None = Field(default=None, description="when up")
    error: str | None = Field(default=None, description="when down: the kind of failure")


class Checks(BaseModel):
    postgres: Check
    redis: Check
    blink: Check


class AccountBudgetView(BaseModel):
    """A POS account's invoice budget, named by its label (never its wallet id)."""

    account: str
    invoiceBudgetRemaining: int
    invoicesInWindow: int
    blockedSeconds: int


class HealthAnswer(BaseModel):
    """`healthy`, `degraded` (Redis down: it is a cache) or `unhealthy` (PostgreSQL or Blink down: a 503)."""

    status: Literal["healthy", "degraded", "unhealthy"]
    sandbox: bool
    checks: Checks
    posAccounts: list[AccountBudgetView]


class Last24Hours(BaseModel):
    pending_count: int
    processing_count: int
    completed_count: int
    failed_count: int
    expired_count: int
    total_tips_processed: int
    average_tip_amount: float
    total_volume: int


class RecipientTotals(BaseModel):
    username: str
    totalTips: int
    count: int
    averageTip: float | None
    lastTipAt: IsoTime | None


class StatsAnswer(Sparse):
    """The last 24 hours and the top recipients; with PostgreSQL down, what the fallback store holds instead."""

    last24Hours: Last24Hours | None
    recipients: list[RecipientTotals] | None = Field(default=None, description="absent while PostgreSQL is down")
    storage: str
    generatedAt: IsoTime
    journalPending: int | None = Field(default=None, description="only while PostgreSQL is down")
    fileStore: dict[str, int] | None = Field(default=None, description="only while PostgreSQL is down")


class SandboxAccountView(BaseModel):
    username: str
    apiKey: str
    walletId: str


class SandboxAnswer(BaseModel):
    """The simulator's accounts (simulated money only), enough to make a sale by hand."""

    simUrl: str
    pos: SandboxAccountView
    merchant: SandboxAccountView
    recipients: list[SandboxAccountView]


class WebhookAnswer(Sparse):
    received: Literal[True]
    action: Literal["ignored", "settling"]
    paymentHash: str | None = Field(default=None, description="the payment being settled")
