"""Typed values the Blink client returns; all amounts are integer sats."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any


class PaymentSendStatus(StrEnum):
    """Blink's four answers to a payment send, kept apart because each needs different handling."""

    SUCCESS = "SUCCESS"
    ALREADY_PAID = "ALREADY_PAID"
    FAILURE = "FAILURE"
    PENDING = "PENDING"


class InvoiceStatus(StrEnum):
    """Where a Lightning invoice stands on Blink's side."""

    PENDING = "PENDING"
    PAID = "PAID"
    EXPIRED = "EXPIRED"


class TxStatus(StrEnum):
    """Where one of a wallet's transactions stands; a send stays PENDING while its payment is in flight."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


@dataclass(frozen=True)
class ApiErrorItem:
    """One entry of a payload's `errors` list, as Blink reports it."""

    message: str
    code: str | None = None
    path: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "ApiErrorItem":
        return cls(
            message=str(item.get("message") or ""),
            code=item.get("code"),
            path=tuple(str(p) for p in item.get("path") or ()),
        )

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


@dataclass(frozen=True)
class Wallet:
    id: str
    currency: str
    balance: int


@dataclass(frozen=True)
class PublicWallet:
    """A Blink user's wallet as anyone may see it: where to send, and whether it holds sats (BTC) or cents (USD)."""

    id: str
    currency: str


@dataclass(frozen=True)
class Me:
    """The account an API key belongs to, used to check which wallets a key may spend from."""

    account_id: str
    username: str | None
    default_wallet_id: str
    wallets: tuple[Wallet, ...]

    def wallet(self, wallet_id: str) -> Wallet | None:
        """The account's wallet with this id; None when the key's account does not own it."""
        return next((wallet for wallet in self.wallets if wallet.id == wallet_id), None)


@dataclass(frozen=True)
class Invoice:
    payment_hash: str
    payment_request: str
    satoshis: int
    status: InvoiceStatus


@dataclass(frozen=True)
class PaymentResult:
    """A payment send's answer; FAILURE and PENDING are results to act on, not exceptions."""

    status: PaymentSendStatus
    errors: tuple[ApiErrorItem, ...] = ()

    @property
    def settled(self) -> bool:
        """True when the invoice is paid, by this send or an earlier one."""
        return self.status in (PaymentSendStatus.SUCCESS, PaymentSendStatus.ALREADY_PAID)


@dataclass(frozen=True)
class WalletSends:
    """The statuses of a wallet's own sends for one invoice, as Blink lists them.

    This, not the invoice's status, says whether money for the invoice is on
    its way: an invoice may be reported unpaid, even expired, while a send to it is in flight.
    """

    statuses: tuple[TxStatus, ...] = ()

    @property
    def succeeded(self) -> bool:
        return TxStatus.SUCCESS in self.statuses

    @property
    def in_flight(self) -> bool:
        return TxStatus.PENDING in self.statuses


@dataclass(frozen=True)
class RealtimePrice:
    """Blink's price of one sat, in minor units of a display currency, as base / 10**offset."""

    currency: str
    fraction_digits: int
    sat_price_base: int
    sat_price_offset: int

    def minor_units_bought_by(self, sats: int) -> int:
        """The whole minor units (e.g. US cents) `sats` buy at this price, rounded down as Blink credits them."""
        return sats * self.sat_price_base // 10**self.sat_price_offset

    def sats_for(self, amount: Decimal) -> int:
        """Convert a display amount in major units (e.g. 12.50 USD, 1500 JPY) to whole sats, half up.

        Amounts finer than the currency's minor unit (cents for USD, yen for
        JPY) are refused rather than silently rounded.
        """
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"amount must be a finite, non-negative number, got {amount}")
        if self.sat_price_base <= 0:
            raise ValueError(f"{self.currency} price of a sat is not positive")
        minor = amount.scaleb(self.fraction_digits)
        if minor != minor.to_integral_value():
            raise ValueError(
                f"{amount} {self.currency} has more than {self.fraction_digits} fraction digits"
            )
        sats = Fraction(int(minor)) * Fraction(10) ** self.sat_price_offset / self.sat_price_base
        return (2 * sats.numerator + sats.denominator) // (2 * sats.denominator)


@dataclass(frozen=True)
class LnUpdate:
    """A `myUpdates` event: an invoice of one of our wallets changed status."""

    wallet_id: str
    payment_hash: str
    status: InvoiceStatus
