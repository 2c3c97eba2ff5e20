"""Creating a POS invoice: decide the split on the server, check everyone with Blink, then store it.

The caller (a POS page) is never trusted with money: amounts are computed
here in integer sats, the merchant's key must own the wallet it names, every
tip recipient must exist, and the split is stored durably before the
invoice is handed out, so that whatever the customer pays can be forwarded.
"""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkApiError, BlinkAuthError, BlinkGraphQLError, BlinkNotFound
from tipsplit.blink.types import PublicWallet, RealtimePrice
from tipsplit.domain.memos import invoice_memo
from tipsplit.domain.models import LegPlan, TipData, TipRecipient, plan_legs
from tipsplit.domain.split import equal_shares, tip_from_percent
from tipsplit.domain.states import WalletCurrency
from tipsplit.services.merchant_keys import MerchantKeyPolicy, MerchantKeyRefused
from tipsplit.services.pos_accounts import PosAccounts
from tipsplit.services.single_flight import SingleFlight
from tipsplit.store.errors import PaymentConflict
from tipsplit.store.intake import PaymentIntake

SAT_CURRENCIES = frozenset({"BTC", "SAT", "SATS"})

T = TypeVar("T")


class InvoiceRequestError(ValueError):
    """The request cannot become an invoice; `field` names the part of the body at fault."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        self.field = field
        self.status = status
        super().__init__(message)


class PaymentHashTaken(InvoiceRequestError):
    """Blink answered with the payment hash of a sale already stored: the new sale must not become the old one."""

    def __init__(self) -> None:
        super().__init__(
            "paymentHash",
            "Blink answered with the payment hash of an earlier sale; this sale was not created and nothing was"
            " charged: try again",
            status=409,
        )


@dataclass(frozen=True)
class InvoiceOrder:
    """A create-invoice request as the POS sent it, before any amount is trusted."""

    user_wallet_id: str
    api_key: str
    amount: int | None = None
    base_amount: int | None = None
    tip_amount: int | None = None
    tip_percent: Decimal | None = None
    display_currency: str = "BTC"
    base_amount_display: Decimal | None = None
    recipients: tuple[tuple[str, Decimal | None], ...] = ()
    memo: str | None = None


@dataclass(frozen=True)
class CreatedInvoice:
    payment_request: str
    payment_hash: str
    satoshis: int
    expires_at: datetime
    tip: TipData
    legs: list[LegPlan]

    def split(self) -> dict[str, Any]:
        """The split as the POS shows it: base, then each recipient's tip."""
        return {
            "baseAmount": self.tip.base_amount,
            "tipAmount": self.tip.tip_amount,
            "tipPercent": float(self.tip.tip_percent) if self.tip.tip_percent is not None else None,
            "legs": [
                {
                    "leg": leg.leg,
                    "amount": leg.amount,
                    "recipient": leg.username,
                    "share": float(leg.share) if leg.share is not None else None,
                    "skipped": leg.skipped,
                }
                for leg in self.legs
            ],
        }


class LookupCache:
    """Remembers Blink's answers briefly (a key owns a wallet; a username's wallet), so a sale costs no lookups.

    Concurrent misses for the same question share one Blink call: when an
    entry expires under load, every sale in flight would otherwise ask Blink
    at once. Keys are hashed, so an API key is never held in clear longer
    than the request. Failures are not remembered.
    """

    def __init__(self, ttl_seconds: int, max_entries: int = 10_000) -> None:
        self._answers: SingleFlight[Any] = SingleFlight(ttl_seconds, max_entries=max_entries)

    @staticmethod
    def _key(*parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    async def get_or_fetch(self, fetch: Callable[[], Awaitable[T]], *parts: str) -> T:
        """The remembered answer, or the answer of one `fetch` shared by every caller asking meanwhile.

        The first part names the kind of question, so one key is always answered with one type.
        """
        answer: T = await self._answers.run(self._key(*parts), fetch)
        return answer


class InvoiceService:
    """Turns an InvoiceOrder into a stored split and a POS invoice."""

    def __init__(
        self,
        intake: PaymentIntake,
        pos: BlinkClient,
        accounts: PosAccounts,
        expiry_minutes: int,
        lookups: LookupCache,
        merchant_keys: MerchantKeyPolicy,
    ) -> None:
        self._intake = intake
        self._pos = pos
        self._accounts = accounts
        self._expiry_minutes = expiry_minutes
        self._lookups = lookups
        self._merchant_keys = merchant_keys

    async def create(self, order: InvoiceOrder) -> CreatedInvoice:
        base, tip = await self._amounts(order)
        recipients = _recipients(order, tip)
        tip_data = _tip_data(order, base, tip, recipients)
        merchant_currency = await self.check_merchant(order.api_key, order.user_wallet_id)
        wallets = await self._recipient_wallets([r.username for r in recipients])
        currencies = {wallet.id: WalletCurrency(wallet.currency) for wallet in wallets.values()}
        currencies[order.user_wallet_id] = merchant_currency
        await self._check_usd_legs(tip_data, merchant_currency, wallets)
        memo = invoice_memo(base, order.tip_percent, base + tip, order.memo)
        account, invoice = await self._accounts.create_sale_invoice(base + tip, memo, self._expiry_minutes)
        now = datetime.now(UTC)
        expires_at = now + timedelta(minutes=self._expiry_minutes)
        stored = tip_data.model_copy(
            update={"payment_request": invoice.payment_request, "created_at": now, "expires_at": expires_at,
                    "memo": memo, "pos_wallet_id": account.wallet_id}
        )
        try:
            fresh = await self._intake.create(
                invoice.payment_hash, stored, recipient_wallets={name: w.id for name, w in wallets.items()},
                wallet_currencies=currencies,
            )
        except PaymentConflict:
            raise PaymentHashTaken() from None
        if not fresh:
            raise PaymentHashTaken()
        return CreatedInvoice(
            invoice.payment_request, invoice.payment_hash, invoice.satoshis, expires_at, stored, plan_legs(stored)
        )

    async def _amounts(self, order: InvoiceOrder) -> tuple[int, int]:
        """Base and tip in sats, from whichever of the original app's field combinations was sent."""
        tip = order.tip_amount
        if order.display_currency.upper() not in SAT_CURRENCIES and order.base_amount_display is not None:
            price = await self._price(order.display_currency.upper())
            try:
                base = price.sats_for(order.base_amount_display)
            except ValueError as exc:
                raise InvoiceRequestError("baseAmountDisplay", str(exc)) from None
        elif order.base_amount is not None:
            base = order.base_amount
        elif order.amount is not None:
            if tip is None:
                percent = order.tip_percent or Decimal(0)
                tip = order.amount - int(Decimal(order.amount) * 100 / (100 + percent))
            base = order.amount - tip
            if base < 0:
                raise InvoiceRequestError("tipAmount", "tipAmount is larger than amount")
        else:
            raise InvoiceRequestError("amount", "give amount, baseAmount, or displayCurrency with baseAmountDisplay")
        if tip is None:
            tip = tip_from_percent(base, order.tip_percent or Decimal(0))
        if order.amount is not None and order.amount != base + tip:
            raise InvoiceRequestError(
                "amount", f"amount {order.amount} does not equal baseAmount + tipAmount ({base} + {tip})"
            )
        if base + tip <= 0:
            raise InvoiceRequestError("amount", "the invoice amount must be at least 1 sat")
        return base, tip

    async def _check_usd_legs(
        self, tip: TipData, merchant_currency: WalletCurrency, wallets: dict[str, PublicWallet]
    ) -> None:
        """Refuse a sale with a leg to a USD wallet worth less than a cent: Blink refuses to invoice it."""
        usd_legs = [
            leg for leg in plan_legs(tip)
            if not leg.skipped and (
                merchant_currency if leg.username is None else WalletCurrency(wallets[leg.username].currency)
            ) is WalletCurrency.USD
        ]
        if not usd_legs:
            return
        price = await self._price("USD")
        for leg in usd_legs:
            if price.minor_units_bought_by(leg.amount) < 1:
                field, whose = ("tipRecipients", f"@{leg.username}'s") if leg.username else ("baseAmount", "the merchant's")
                raise InvoiceRequestError(
                    field,
                    f"{leg.amount} sats for {whose} USD wallet are worth less than one US cent, which Blink cannot"
                    " credit: raise the amount",
                )

    async def _price(self, currency: str) -> RealtimePrice:
        try:
            return await self._pos.realtime_price(currency)
        except (BlinkNotFound, BlinkGraphQLError, BlinkApiError):
            raise InvoiceRequestError("displayCurrency", f"Blink has no price for {currency!r}") from None

    async def check_merchant(self, api_key: str, wallet_id: str) -> WalletCurrency:
        """What the wallet holds (BTC or USD), once Blink confirms (cached) that the key's account owns it and the
        key cannot spend (unless allowed); InvoiceRequestError 401/403 otherwise."""

        async def ask_blink() -> WalletCurrency:
            merchant = self._pos.with_api_key(api_key)
            try:
                me, scopes = await asyncio.gather(merchant.me(), merchant.scopes())
            except BlinkAuthError:
                raise InvoiceRequestError(
                    "apiKey", "Blink refused this API key (it must be a valid key with the READ scope)", status=401
                ) from None
            wallet = me.wallet(wallet_id)
            if wallet is None:
                raise InvoiceRequestError("userWalletId", "this wallet does not belong to the API key's account", 403)
            try:
                self._merchant_keys.check(scopes, me.username)
            except MerchantKeyRefused as exc:
                raise InvoiceRequestError("apiKey", str(exc)) from None
            return WalletCurrency(wallet.currency)

        return await self._lookups.get_or_fetch(ask_blink, "owner", api_key, wallet_id)

    async def _recipient_wallets(self, usernames: list[str]) -> dict[str, PublicWallet]:
        """Every recipient's default wallet (BTC or USD), looked up together; an unknown username refuses the sale."""
        wallets = await asyncio.gather(*(self._wallet_of(name) for name in usernames))
        return dict(zip(usernames, wallets, strict=True))

    async def _wallet_of(self, username: str) -> PublicWallet:
        async def ask_blink() -> PublicWallet:
            try:
                return await self._pos.account_default_wallet(username)
            except BlinkNotFound:
                raise InvoiceRequestError("tipRecipients", f"Blink has no user named {username!r}") from None

        return await self._lookups.get_or_fetch(ask_blink, "wallet", username.lower())


def _recipients(order: InvoiceOrder, tip: int) -> list[TipRecipient]:
    if not order.recipients:
        if tip:
            raise InvoiceRequestError("tipRecipients", "a tip needs at least one tip recipient")
        return []
    names = [name for name, _ in order.recipients]
    given = [share for _, share in order.recipients]
    if all(share is None for share in given):
        shares = equal_shares(names)
    elif any(share is None for share in given):
        raise InvoiceRequestError("tipRecipients", "give a share for every recipient or for none")
    else:
        shares = list(zip(names, given, strict=True))  # type: ignore[arg-type]
    try:
        return [TipRecipient(username=name, share=share) for name, share in shares]
    except ValueError as exc:
        raise InvoiceRequestError("tipRecipients", _first_error(exc)) from None


def _tip_data(order: InvoiceOrder, base: int, tip: int, recipients: list[TipRecipient]) -> TipData:
    try:
        return TipData(
            base_amount=base,
            tip_amount=tip,
            tip_percent=order.tip_percent,
            tip_recipients=tuple(recipients),
            user_api_key=order.api_key,
            user_wallet_id=order.user_wallet_id,
            display_currency=order.display_currency.upper(),
            base_amount_display=order.base_amount_display,
            memo=order.memo,
        )
    except ValueError as exc:
        raise InvoiceRequestError("body", _first_error(exc)) from None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)
