"""Request bodies as the original BlinkPOS front end sends them (camelCase), validated at the edge."""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from tipsplit.domain.models import MAX_MEMO, MAX_RECIPIENTS, MAX_SATS, PaymentHash, PlainText, Username

Sats = Field(default=None, ge=0, le=MAX_SATS, strict=True)


class RecipientIn(BaseModel):
    username: Username
    share: Decimal | None = Field(default=None, gt=0, le=100)


class CreateInvoiceBody(BaseModel):
    """`amount` (total) with `baseAmount` + `tipAmount`/`tipPercent`, or a display-currency base."""

    model_config = ConfigDict(extra="ignore")

    amount: int | None = Sats
    baseAmount: int | None = Sats
    tipAmount: int | None = Sats
    tipPercent: Decimal | None = Field(default=None, ge=0, le=100)
    displayCurrency: str = Field(default="BTC", min_length=3, max_length=10, pattern=r"^[A-Za-z]{3,10}$")
    baseAmountDisplay: Decimal | None = Field(default=None, ge=0, le=Decimal("1e15"))
    tipRecipients: list[RecipientIn] | None = Field(default=None, max_length=MAX_RECIPIENTS)
    tipRecipient: Username | None = None
    memo: PlainText | None = Field(default=None, max_length=MAX_MEMO)
    # Blink wallet ids are UUIDs; anything else is refused before Blink is asked about it.
    userWalletId: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    # Sent to Blink as the X-API-KEY header: printable ASCII only, or the HTTP client fails (a 500) and logs it.
    apiKey: str = Field(min_length=1, max_length=500, pattern=r"^[\x21-\x7e]+$")


class ForwardBody(BaseModel):
    """Only the hash is read: amounts sent by the caller are ignored (invariant 3)."""

    model_config = ConfigDict(extra="ignore")

    paymentHash: PaymentHash
