"""An in-memory Blink behind settlement's narrow port (`services/blink_port.py`), with every answer scriptable.

It keeps a small ledger of its own, so tests can check what moved: invoices
(with their externalIds, unique per recipient wallet as on Blink), the POS
wallet's sends to each invoice, and which invoices were paid. By default it
behaves like a healthy Blink; `script(operation, *answers)` queues answers
for the next calls of one operation, each of which may be:

- an exception instance: raised, nothing happens (the request never arrived);
- for `pay_invoice`, a `Pay` action: what the send does and what the caller hears
  (paid, failed, pending, or paid/not paid with the answer lost);
- for the creations, `LOST_CREATION`: the invoice is made but the answer is lost;
- any other value: returned as is.

This fake is for fast unit tests of the settlement state machine, in addition
to (never instead of) the tests against the simulator over HTTP.
"""

import asyncio
import secrets
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tipsplit.blink.errors import (
    BlinkDuplicateExternalId,
    BlinkNotFound,
    BlinkOutcomeUnknown,
    BlinkUnavailable,
)
from tipsplit.blink.types import (
    ApiErrorItem,
    Invoice,
    InvoiceStatus,
    PaymentResult,
    PaymentSendStatus,
    PublicWallet,
    TxStatus,
    WalletSends,
)


class Pay(Enum):
    """What a scripted `pay_invoice` does on the fake's ledger, and what the caller is told."""

    SUCCEED = "succeed"
    FAIL = "fail"
    PEND = "pend"
    LOST_AFTER_PAYING = "lost_after_paying"
    LOST_BEFORE_PAYING = "lost_before_paying"


LOST_CREATION = object()


@dataclass
class FakeInvoice:
    payment_hash: str
    payment_request: str
    wallet_id: str
    amount: int
    memo: str | None
    external_id: str | None
    usd: bool
    expires_in_minutes: int | None
    status: InvoiceStatus = InvoiceStatus.PENDING


@dataclass
class FakeBlink:
    """A Blink that answers settlement's questions from memory; `delay` makes every call take that long."""

    pos_wallet_id: str = "pos-wallet"
    users: dict[str, PublicWallet] = field(default_factory=dict)
    delay: float = 0.0
    invoices: dict[str, FakeInvoice] = field(default_factory=dict)
    pos_invoices: dict[str, InvoiceStatus] = field(default_factory=dict)
    sends: dict[str, list[TxStatus]] = field(default_factory=lambda: defaultdict(list))
    calls: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    most_in_flight: int = 0
    _answers: dict[tuple[str, str | None], deque[Any]] = field(default_factory=lambda: defaultdict(deque))

    def script(self, operation: str, *answers: Any, to: str | None = None) -> None:
        """Queue answers for the next calls of `operation` (a method name of the port).

        With `to` (a destination wallet id, or a username for `account_default_wallet`)
        only calls about that destination take them, so that concurrent legs can be
        scripted one by one; answers without `to` go to the first call that has none of its own.
        """
        self._answers[(operation, to)].extend(answers)

    def scripted(self, operation: str, to: str | None = None) -> int:
        """How many scripted answers of `operation` are still unused."""
        return len(self._answers[(operation, to)])

    # -- what tests set up and look at ------------------------------------------

    def pos_invoice(self, payment_hash: str, status: InvoiceStatus = InvoiceStatus.PAID) -> None:
        """Say what Blink answers about a POS invoice."""
        self.pos_invoices[payment_hash] = status

    def expire(self, payment_hash: str) -> None:
        """An unpaid invoice reaches its expiry (a paid one stays paid)."""
        invoice = self.invoices[payment_hash]
        if invoice.status is InvoiceStatus.PENDING:
            invoice.status = InvoiceStatus.EXPIRED

    def settle_send(self, payment_hash: str, succeeded: bool = True) -> None:
        """A send that was in flight to this invoice arrives (or fails)."""
        statuses = self.sends[payment_hash]
        index = statuses.index(TxStatus.PENDING)
        statuses[index] = TxStatus.SUCCESS if succeeded else TxStatus.FAILURE
        if succeeded:
            self.invoices[payment_hash].status = InvoiceStatus.PAID

    def _wallet_of(self, payment_hash: str) -> str | None:
        invoice = self.invoices.get(payment_hash)
        return invoice.wallet_id if invoice is not None else None

    def invoices_to(self, wallet_id: str) -> list[FakeInvoice]:
        return [invoice for invoice in self.invoices.values() if invoice.wallet_id == wallet_id]

    def paid_into(self, wallet_id: str) -> int:
        """Sats that reached a wallet: each paid invoice once, as Lightning pays an invoice at most once."""
        return sum(i.amount for i in self.invoices_to(wallet_id) if i.status is InvoiceStatus.PAID)

    def successful_sends(self) -> Counter[str]:
        """Successful sends of the POS wallet, by invoice hash; exactly-once means none is above 1."""
        return Counter({h: statuses.count(TxStatus.SUCCESS) for h, statuses in self.sends.items()})

    # -- the port -----------------------------------------------------------------

    async def _enter(self, operation: str, to: str | None = None) -> Any:
        self.calls[operation] += 1
        if to is not None:
            self.calls[f"{operation}:{to}"] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        queue = self._answers[(operation, to)] if to is not None else deque()
        queue = queue or self._answers[(operation, None)]
        answer = queue.popleft() if queue else None
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def invoice_status_by_hash(self, payment_hash: str) -> InvoiceStatus:
        answer = await self._enter("invoice_status_by_hash", self._wallet_of(payment_hash))
        if answer is not None:
            return InvoiceStatus(answer)
        if payment_hash in self.pos_invoices:
            return self.pos_invoices[payment_hash]
        if payment_hash in self.invoices:
            return self.invoices[payment_hash].status
        raise BlinkNotFound("lnInvoicePaymentStatusByHash", "no invoice with this hash")

    async def wallet_sends(self, wallet_id: str, payment_hash: str) -> WalletSends:
        answer = await self._enter("wallet_sends", self._wallet_of(payment_hash))
        if answer is not None:
            return WalletSends(tuple(answer))
        assert wallet_id == self.pos_wallet_id, "sends are looked up on the POS wallet"
        return WalletSends(tuple(self.sends.get(payment_hash, ())))

    async def account_default_wallet(self, username: str) -> PublicWallet:
        answer = await self._enter("account_default_wallet", username)
        if answer is not None:
            return PublicWallet(answer.id, answer.currency)
        if username not in self.users:
            raise BlinkNotFound("accountDefaultWallet", "no account with this username")
        return self.users[username]

    async def create_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        return await self._create(
            "create_invoice_on_behalf_of_recipient", recipient_wallet_id, amount_sats, memo, expires_in_minutes,
            external_id, usd=False,
        )

    async def create_usd_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        return await self._create(
            "create_usd_invoice_on_behalf_of_recipient", recipient_wallet_id, amount_sats, memo, expires_in_minutes,
            external_id, usd=True,
        )

    async def _create(
        self, operation: str, wallet_id: str, amount: int, memo: str | None, expiry: int | None,
        external_id: str | None, *, usd: bool,
    ) -> Invoice:
        answer = await self._enter(operation, wallet_id)
        if external_id is not None and any(
            i.external_id == external_id for i in self.invoices_to(wallet_id)
        ):
            raise BlinkDuplicateExternalId(
                operation, [ApiErrorItem("External id for invoice or transaction already exists")]
            )
        payment_hash = secrets.token_hex(32)
        invoice = FakeInvoice(payment_hash, f"lnbcfake{payment_hash[:20]}", wallet_id, amount, memo, external_id, usd, expiry)
        self.invoices[payment_hash] = invoice
        if answer is LOST_CREATION:
            raise BlinkUnavailable(operation, "the answer was lost (the invoice exists)")
        return Invoice(payment_hash, invoice.payment_request, amount, InvoiceStatus.PENDING)

    async def pay_invoice(self, wallet_id: str, payment_request: str, memo: str | None = None) -> PaymentResult:
        invoice = next(i for i in self.invoices.values() if i.payment_request == payment_request)
        answer = await self._enter("pay_invoice", invoice.wallet_id)
        assert wallet_id == self.pos_wallet_id, "legs are paid from the POS wallet that received the sale"
        if isinstance(answer, PaymentResult):
            return answer
        action = answer or Pay.SUCCEED
        sends = self.sends[invoice.payment_hash]
        if invoice.status is InvoiceStatus.PAID:
            return PaymentResult(PaymentSendStatus.ALREADY_PAID)
        if invoice.status is InvoiceStatus.EXPIRED or action is Pay.FAIL:
            sends.append(TxStatus.FAILURE)
            return PaymentResult(PaymentSendStatus.FAILURE, (ApiErrorItem("no route", "ROUTE_FINDING_ERROR"),))
        if action is Pay.PEND:
            sends.append(TxStatus.PENDING)
            return PaymentResult(PaymentSendStatus.PENDING)
        if action is Pay.LOST_BEFORE_PAYING:
            raise BlinkOutcomeUnknown("lnInvoicePaymentSend", "timed out before Blink acted")
        sends.append(TxStatus.SUCCESS)
        invoice.status = InvoiceStatus.PAID
        if action is Pay.LOST_AFTER_PAYING:
            raise BlinkOutcomeUnknown("lnInvoicePaymentSend", "timed out after the money moved")
        return PaymentResult(PaymentSendStatus.SUCCESS)

