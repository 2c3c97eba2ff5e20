"""The typed shape of a payment split, accepting the original app's camelCase fields.

Validation lives here so that every way in (HTTP, migration, file store)
refuses the same bad input with the same message.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from tipsplit.domain.memos import forward_memo, tip_memo
from tipsplit.domain.split import HUNDRED, equal_shares, split_tip
from tipsplit.domain.states import BASE_LEG, tip_leg

HASH_RE = re.compile(r"^[0-9a-f]{64}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{3,50}$")
# C0 and C1 control characters other than tab and line breaks, and UTF-16 surrogates (never valid alone in text).
UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_SATS = 2_100_000_000_000_000
MAX_RECIPIENTS = 10
MAX_MEMO = 639


def check_payment_hash(value: str) -> str:
    """A payment hash is 64 hex digits; normalised to lower case."""
    lowered = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(lowered, str) or not HASH_RE.fullmatch(lowered):
        raise ValueError("payment hash must be 64 hexadecimal characters")
    return lowered


def check_username(value: str) -> str:
    """Blink usernames: 3-50 letters, digits or underscores."""
    if not USERNAME_RE.fullmatch(value):
        raise ValueError(f"username {value!r} must be 3-50 letters, digits or underscores")
    return value


def check_plain_text(value: str) -> str:
    """Free text that is stored and sent on (a memo): no control characters but tab and line breaks.

    PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate, so
    such text would fail only after Blink had already made the invoice.
    """
    found = UNPRINTABLE_RE.search(value)
    if found is not None:
        code = f"U+{ord(found.group()):04X}"
        raise ValueError(f"must not contain control characters or unpaired surrogates (found {code})")
    return value


PaymentHash = Annotated[str, AfterValidator(check_payment_hash)]
PlainText = Annotated[str, AfterValidator(check_plain_text)]
Username = Annotated[str, AfterValidator(check_username)]
Sats = Annotated[int, Field(ge=0, le=MAX_SATS, strict=True)]


class TipRecipient(BaseModel):
    """A tip recipient and their percentage of the tip."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    username: Username
    share: Decimal = Field(gt=0, le=100, max_digits=7, decimal_places=4)


class TipData(BaseModel):
    """What must be remembered between creating an invoice and forwarding it."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    base_amount: Sats = Field(alias="baseAmount")
    tip_amount: Sats = Field(default=0, alias="tipAmount")
    tip_percent: Decimal | None = Field(default=None, alias="tipPercent", ge=0, le=100)
    tip_recipients: tuple[TipRecipient, ...] = Field(default=(), alias="tipRecipients", max_length=MAX_RECIPIENTS)
    user_api_key: SecretStr = Field(alias="userApiKey", min_length=1, max_length=500)
    user_wallet_id: str = Field(alias="userWalletId", min_length=1, max_length=100)
    username: str | None = Field(default=None, max_length=50)
    display_currency: str = Field(default="BTC", alias="displayCurrency", min_length=3, max_length=10)
    base_amount_display: Decimal | None = Field(default=None, alias="baseAmountDisplay")
    tip_amount_display: Decimal | None = Field(default=None, alias="tipAmountDisplay")
    memo: PlainText | None = Field(default=None, max_length=MAX_MEMO)
    payment_request: str | None = Field(default=None, alias="paymentRequest", max_length=4000)
    pos_wallet_id: str | None = Field(default=None, alias="posWalletId", max_length=100)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")

    @model_validator(mode="before")
    @classmethod
    def _legacy_single_recipient(cls, data: Any) -> Any:
        """The original app stored one `tipRecipient`; treat it as a 100 % share."""
        if isinstance(data, dict) and not data.get("tipRecipients") and not data.get("tip_recipients"):
            single = data.get("tipRecipient") or data.get("tip_recipient")
            if single:
                data = {**data, "tipRecipients": [{"username": single, "share": 100}]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "TipData":
        names = [r.username.lower() for r in self.tip_recipients]
        if len(set(names)) != len(names):
            raise ValueError("tipRecipients lists a username twice")
        total = sum((r.share for r in self.tip_recipients), Decimal(0))
        if self.tip_recipients and total != HUNDRED:
            raise ValueError(f"tipRecipients shares must sum to 100; they sum to {total.normalize():f}")
        if self.tip_amount > 0 and not self.tip_recipients:
            raise ValueError("a tip needs at least one tip recipient")
        if self.total_amount == 0:
            raise ValueError("the invoice amount must be at least 1 sat")
        if self.total_amount > MAX_SATS:
            raise ValueError("the invoice amount exceeds 21 million BTC")
        return self

    @property
    def total_amount(self) -> int:
        """The invoice amount; always base + tip."""
        return self.base_amount + self.tip_amount

    @property
    def tip_recipient(self) -> str | None:
        """The first recipient, for the seed's single `tip_recipient` column."""
        return self.tip_recipients[0].username if self.tip_recipients else None


@dataclass(frozen=True, slots=True)
class LegPlan:
    """One transfer the settlement must make: to the merchant's wallet or a recipient's username."""

    leg: str
    amount: int
    wallet_id: str | None
    username: str | None
    share: Decimal | None
    memo: str

    @property
    def skipped(self) -> bool:
        """0-sat legs cannot be invoiced; they are recorded and skipped."""
        return self.amount == 0


def plan_legs(tip: TipData) -> list[LegPlan]:
    """The base leg then one leg per recipient, amounts summing to the invoice amount, each with its memo."""
    names = [r.username for r in tip.tip_recipients]
    base_memo = forward_memo(tip.base_amount, tip.tip_amount, tip.tip_percent, tip.total_amount, names)
    legs = [LegPlan(BASE_LEG, tip.base_amount, tip.user_wallet_id, None, None, base_memo)]
    shares = [(r.username, r.share) for r in tip.tip_recipients]
    for i, part in enumerate(split_tip(tip.tip_amount, shares), start=1):
        legs.append(
            LegPlan(tip_leg(i), part.amount, None, part.username, part.share, tip_memo(i, len(shares), part.amount))
        )
    return legs


__all__ = [
    "LegPlan",
    "PaymentHash",
    "PlainText",
    "Sats",
    "TipData",
    "TipRecipient",
    "Username",
    "check_payment_hash",
    "check_plain_text",
    "equal_shares",
    "plan_legs",
]
