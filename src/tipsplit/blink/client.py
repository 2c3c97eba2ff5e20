"""Blink's GraphQL API over HTTP: typed calls, retries only where no money can move.

Queries are retried with a short, bounded backoff when Blink is unavailable.
Invoice creation is tried once: each try may cost a point of the account's
invoice budget at Blink, so only the caller, who took that point, may try
again. A payment send is tried exactly once: if its answer is lost the call
raises `BlinkOutcomeUnknown`, and the caller asks Blink what became of the
send (the wallet's own sends for the invoice, and the invoice's status).
"""

import asyncio
import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from tipsplit.blink.documents import document
from tipsplit.blink.errors import (
    AUTH_CODES,
    DUPLICATE_EXTERNAL_ID_MESSAGE,
    NOT_FOUND_CODES,
    RATE_LIMITED_CODE,
    BlinkApiError,
    BlinkAuthError,
    BlinkDuplicateExternalId,
    BlinkError,
    BlinkGraphQLError,
    BlinkNotFound,
    BlinkOutcomeUnknown,
    BlinkRateLimited,
    BlinkUnavailable,
)
from tipsplit.blink.transport import (
    ConnectionLost,
    HttpPool,
    NoAnswerInTime,
    NotSent,
    Timeout,
    TimeoutSettings,
)
from tipsplit.blink.types import (
    ApiErrorItem,
    Invoice,
    InvoiceStatus,
    Me,
    PaymentResult,
    PaymentSendStatus,
    PublicWallet,
    RealtimePrice,
    TxStatus,
    Wallet,
    WalletSends,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)

# Blink's permission layer refuses a key without the scope an operation needs before any resolver runs, as a
# top-level error whose message names this error class.
AUTHORIZATION_REFUSED = "AuthorizationError"
# Errors raised before any resolver ran: a payment send that got one did not happen.
REJECTED_BEFORE_EXECUTION = frozenset(
    {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "BAD_REQUEST"}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times an operation that cannot move money is tried while Blink is unavailable."""

    attempts: int = 3
    first_delay: float = 0.1
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def delay(self, retry: int) -> float:
        """Exponential backoff with jitter, so many clients do not hammer Blink in lockstep."""
        ceiling = min(self.max_delay, self.first_delay * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class BlinkClient:
    """One Blink API key speaking to one GraphQL endpoint over a shared connection pool."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: TimeoutSettings | float = DEFAULT_TIMEOUT,
        http: HttpPool | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._timeout: TimeoutSettings = Timeout.every(timeout) if isinstance(timeout, int | float) else timeout
        self._owns_http = http is None
        self._http = http if http is not None else HttpPool()
        self._retry = retry

    def __repr__(self) -> str:
        return f"BlinkClient(url={self.url!r}, api_key={'set' if self._api_key else 'none'})"

    def with_api_key(self, api_key: str | None) -> "BlinkClient":
        """A client acting with another key (e.g. a merchant's) over this client's connection pool.

        The returned client does not own the pool: close the original one, not it.
        """
        return BlinkClient(self.url, api_key, timeout=self._timeout, http=self._http, retry=self._retry)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # Operations -----------------------------------------------------------------

    async def me(self) -> Me:
        """The account behind the API key, with its wallets: proves which wallets a key may spend."""
        data = await self._retried("me", {})
        with _reading("me"):
            user = data["me"]
            if user is None:
                raise BlinkAuthError("me", "no account behind this API key")
            account = user["defaultAccount"]
            return Me(
                account_id=account["id"],
                username=user.get("username"),
                default_wallet_id=account["defaultWalletId"],
                wallets=tuple(
                    Wallet(id=w["id"], currency=w["walletCurrency"], balance=int(w["balance"]))
                    for w in account["wallets"]
                ),
            )

    async def scopes(self) -> frozenset[str]:
        """What this API key may do (READ, RECEIVE, WRITE): a key with WRITE can spend the account's funds."""
        data = await self._retried("authorization", {})
        with _reading("authorization"):
            return frozenset(str(scope) for scope in data["authorization"]["scopes"])

    async def account_default_wallet(self, username: str) -> PublicWallet:
        """The default wallet of a Blink username, BTC or USD; raises BlinkNotFound for an unknown username.

        A user whose default is their USD (Stablesats) wallet is paid there, as any Blink payer would pay them.
        """
        data = await self._retried("accountDefaultWallet", {"username": username})
        with _reading("accountDefaultWallet"):
            wallet = data["accountDefaultWallet"]
            if wallet is None:
                raise BlinkNotFound("accountDefaultWallet", "no account with this username")
            return PublicWallet(id=str(wallet["id"]), currency=str(wallet["currency"]))

    async def create_invoice(
        self, wallet_id: str, amount_sats: int, memo: str | None = None, expires_in_minutes: int | None = None
    ) -> Invoice:
        """An invoice paying into a wallet of this key's own account (the POS invoice)."""
        variables = {"input": _invoice_input("walletId", wallet_id, amount_sats, memo, expires_in_minutes)}
        data = await self._once("lnInvoiceCreate", variables)
        return _invoice_from_payload("lnInvoiceCreate", data)

    async def create_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        """An invoice paying into anyone's BTC wallet, so a forwarded leg has a payment hash before it is paid.

        With an `external_id`, a repeat of the same creation raises BlinkDuplicateExternalId
        instead of making a second invoice.
        """
        return await self._create_for_recipient(
            "lnInvoiceCreateOnBehalfOfRecipient", recipient_wallet_id, amount_sats, memo, expires_in_minutes,
            external_id,
        )

    async def create_usd_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        """An invoice of `amount_sats` paying into anyone's USD wallet, credited in cents at Blink's price now.

        Blink keeps such an invoice for at most 5 minutes (its price is fixed at creation).
        """
        return await self._create_for_recipient(
            "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient", recipient_wallet_id, amount_sats, memo,
            expires_in_minutes, external_id,
        )

    async def _create_for_recipient(
        self,
        operation: str,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None,
        expires_in_minutes: int | None,
        external_id: str | None,
    ) -> Invoice:
        invoice_input = _invoice_input("recipientWalletId", recipient_wallet_id, amount_sats, memo, expires_in_minutes)
        if external_id is not None:
            invoice_input["externalId"] = external_id
        data = await self._once(operation, {"input": invoice_input})
        return _invoice_from_payload(operation, data)

    async def pay_invoice(self, wallet_id: str, payment_request: str, memo: str | None = None) -> PaymentResult:
        """Pay an invoice from a wallet of this key's account; sent once, never retried.

        FAILURE and PENDING are results. A lost answer raises BlinkOutcomeUnknown:
        resolve it with `wallet_sends` and `invoice_status_by_hash`; paying the same
        invoice again once no send is pending is harmless, paying another is not.
        """
        operation = "lnInvoicePaymentSend"
        payment: dict[str, Any] = {"walletId": wallet_id, "paymentRequest": payment_request}
        if memo is not None:
            payment["memo"] = memo
        data = await self._exchange(operation, {"input": payment}, moves_money=True)
        with _reading(operation, moves_money=True):
            payload = data[operation]
            errors = tuple(ApiErrorItem.from_json(e) for e in payload.get("errors") or ())
            if payload.get("status") is None:
                if errors:
                    # Blink's resolver refused the input (e.g. a wallet of another account) before paying.
                    return PaymentResult(status=PaymentSendStatus.FAILURE, errors=errors)
                raise BlinkOutcomeUnknown(operation, "answer without a status")
            return PaymentResult(status=PaymentSendStatus(payload["status"]), errors=errors)

    async def wallet_sends(self, wallet_id: str, payment_hash: str) -> WalletSends:
        """What this key's wallet has sent towards the invoice `payment_hash`: none, pending, succeeded or failed."""
        operation = "walletSendsByPaymentHash"
        data = await self._retried(operation, {"walletId": wallet_id, "paymentHash": payment_hash})
        with _reading(operation):
            user = data["me"]
            if user is None:
                raise BlinkAuthError(operation, "no account behind this API key")
            transactions = user["defaultAccount"]["walletById"]["transactionsByPaymentHash"]
            return WalletSends(tuple(TxStatus(t["status"]) for t in transactions if t["direction"] == "SEND"))

    async def invoice_status_by_hash(self, payment_hash: str) -> InvoiceStatus:
        return await self._invoice_status("lnInvoicePaymentStatusByHash", {"paymentHash": payment_hash})

    async def realtime_price(self, currency: str) -> RealtimePrice:
        """The current price of one sat in `currency`, for converting display amounts to sats."""
        data = await self._retried("realtimePrice", {"currency": currency})
        with _reading("realtimePrice"):
            price = data["realtimePrice"]
            return RealtimePrice(
                currency=price["denominatorCurrencyDetails"]["id"],
                fraction_digits=int(price["denominatorCurrencyDetails"]["fractionDigits"]),
                sat_price_base=int(price["btcSatPrice"]["base"]),
                sat_price_offset=int(price["btcSatPrice"]["offset"]),
            )

    async def _invoice_status(self, operation: str, status_input: Mapping[str, str]) -> InvoiceStatus:
        data = await self._retried(operation, {"input": status_input})
        with _reading(operation):
            status = data[operation]["status"]
            if status is None:
                raise BlinkNotFound(operation, "Blink knows no such invoice")
            return InvoiceStatus(status)

    # Transport ------------------------------------------------------------------

    async def _once(self, operation: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run an operation that moves no money but must not be repeated blindly (it spends a budget)."""
        return await self._exchange(operation, variables, moves_money=False)

    async def _retried(self, operation: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run an operation that cannot move money, retrying while Blink is unavailable."""
        for retry in range(self._retry.attempts):
            try:
                return await self._exchange(operation, variables, moves_money=False)
            except BlinkUnavailable as exc:
                if retry + 1 == self._retry.attempts:
                    raise
                delay = self._retry.delay(retry)
                log.warning("Blink unavailable, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _exchange(self, operation: str, variables: Mapping[str, Any], *, moves_money: bool) -> dict[str, Any]:
        """One HTTP round trip, its failures sorted into 'nothing happened' and 'outcome unknown'."""
        lost = BlinkOutcomeUnknown if moves_money else BlinkUnavailable
        body = {"query": document(operation), "operationName": operation, "variables": dict(variables)}
        try:
            response = await self._http.post_json(self.url, body, self._headers(), self._timeout)
        except NotSent as exc:
            raise BlinkUnavailable(operation, f"could not connect ({exc})") from exc
        except NoAnswerInTime as exc:
            raise lost(operation, f"no answer in time ({exc})") from exc
        except ConnectionLost as exc:
            raise lost(operation, f"connection failed ({exc})") from exc

        status = response.status
        if status in (401, 403):
            raise BlinkAuthError(operation, f"API key refused (HTTP {status})")
        if status == 429:
            raise BlinkUnavailable(operation, "rate limited (HTTP 429)")
        if status >= 500:
            raise lost(operation, f"server error (HTTP {status})")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            if response.is_success:
                raise lost(operation, "answer is not a GraphQL response")
            raise BlinkError(operation, f"request refused (HTTP {status})")
        if answer.get("errors"):
            raise _graphql_error(operation, answer["errors"], moves_money=moves_money)
        data = answer.get("data")
        if not response.is_success or not isinstance(data, dict):
            raise BlinkError(operation, f"answer without data (HTTP {status})")
        return data

    def _headers(self) -> dict[str, str]:
        return {"X-API-KEY": self._api_key} if self._api_key else {}


def _graphql_error(operation: str, errors: list[Mapping[str, Any]], *, moves_money: bool) -> BlinkError:
    """The exception for top-level GraphQL errors, by their `extensions.code`."""
    error = BlinkGraphQLError(operation, errors)
    codes = {code for code in error.codes if code}
    if codes & AUTH_CODES or AUTHORIZATION_REFUSED in error.detail:
        return BlinkAuthError(operation, error.detail)
    if codes & NOT_FOUND_CODES:
        return BlinkNotFound(operation, error.detail)
    if RATE_LIMITED_CODE in codes:
        return BlinkRateLimited(operation, error.detail)
    if moves_money and not (codes and codes <= REJECTED_BEFORE_EXECUTION):
        # A resolver failed mid-payment: the money may have moved.
        return BlinkOutcomeUnknown(operation, error.detail)
    return error


def _invoice_input(
    wallet_field: str, wallet_id: str, amount_sats: int, memo: str | None, expires_in_minutes: int | None
) -> dict[str, Any]:
    if isinstance(amount_sats, bool) or not isinstance(amount_sats, int) or amount_sats <= 0:
        raise ValueError(f"an invoice needs a positive whole number of sats, got {amount_sats!r}")
    invoice_input: dict[str, Any] = {wallet_field: wallet_id, "amount": amount_sats}
    if memo is not None:
        invoice_input["memo"] = memo
    if expires_in_minutes is not None:
        invoice_input["expiresIn"] = expires_in_minutes
    return invoice_input


def _invoice_from_payload(operation: str, data: Mapping[str, Any]) -> Invoice:
    with _reading(operation):
        payload = data[operation]
        errors = [ApiErrorItem.from_json(e) for e in payload.get("errors") or ()]
        invoice = payload.get("invoice")
        if any(e.message == DUPLICATE_EXTERNAL_ID_MESSAGE for e in errors):
            raise BlinkDuplicateExternalId(operation, errors)
        if any(e.code == RATE_LIMITED_CODE for e in errors):
            raise BlinkRateLimited(operation, "; ".join(str(e) for e in errors))
        if errors or invoice is None:
            raise BlinkApiError(operation, errors)
        return Invoice(
            payment_hash=invoice["paymentHash"],
            payment_request=invoice["paymentRequest"],
            satoshis=int(invoice["satoshis"]),
            status=InvoiceStatus(invoice["paymentStatus"]),
        )


@contextmanager
def _reading(operation: str, *, moves_money: bool = False) -> Iterator[None]:
    """Turn an answer of the wrong shape into a BlinkError instead of a KeyError deep in our code."""
    try:
        yield
    except BlinkError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        kind = BlinkOutcomeUnknown if moves_money else BlinkError
        raise kind(operation, f"unexpected answer shape ({type(exc).__name__}: {exc})") from exc
