"""What settlement needs from Blink, and nothing more: the narrow port the `Settler` is written against.

The real `BlinkClient` satisfies it (mypy checks that where the service is
assembled), and the tests drive every branch of settlement with an in-memory
fake of it. Outcomes keep Blink's three states apart: a `PaymentResult`
(SUCCESS, ALREADY_PAID, FAILURE, PENDING), an error that moved no money
(`BlinkUnavailable`, an API refusal), and `BlinkOutcomeUnknown`, after which
only Blink itself can say whether the money moved.
"""

from typing import Protocol

from tipsplit.blink.types import Invoice, InvoiceStatus, PaymentResult, PublicWallet, WalletSends
from tipsplit.domain.states import WalletCurrency


class SettlementBlink(Protocol):
    """Blink, as seen with one POS account's API key while forwarding a payment's legs."""

    async def invoice_status_by_hash(self, payment_hash: str) -> InvoiceStatus:
        """PENDING, PAID or EXPIRED; raises BlinkNotFound for an invoice Blink does not know (any more)."""
        ...

    async def wallet_sends(self, wallet_id: str, payment_hash: str) -> WalletSends:
        """The POS wallet's own sends to the invoice: whether money for it is on its way, arrived, or never left."""
        ...

    async def account_default_wallet(self, username: str) -> PublicWallet:
        """Where a tip recipient is paid: their default wallet, BTC or USD."""
        ...

    async def create_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        """A leg's invoice on a BTC wallet; a repeated `external_id` raises BlinkDuplicateExternalId."""
        ...

    async def create_usd_invoice_on_behalf_of_recipient(
        self,
        recipient_wallet_id: str,
        amount_sats: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        """A leg's invoice of `amount_sats` on a USD wallet; a repeated `external_id` raises BlinkDuplicateExternalId."""
        ...

    async def pay_invoice(self, wallet_id: str, payment_request: str, memo: str | None = None) -> PaymentResult:
        """Pay an invoice once from the POS wallet; a lost answer raises BlinkOutcomeUnknown."""
        ...


class SettlingAccount(Protocol):
    """The POS account that received a payment: its wallet pays the payment's legs, with its key."""

    @property
    def wallet_id(self) -> str: ...

    @property
    def client(self) -> SettlementBlink: ...


class SettlingAccounts(Protocol):
    """The POS accounts a settler may pay from, and the invoice budget leg invoices spend."""

    def for_payment(self, pos_wallet_id: str | None) -> SettlingAccount | None:
        """The account that received a payment, or None when it is not one of this instance's."""
        ...

    async def create_leg_invoice(
        self,
        account: SettlingAccount,
        recipient_wallet_id: str,
        currency: WalletCurrency,
        amount_sats: int,
        memo: str | None,
        expires_in_minutes: int,
        external_id: str,
    ) -> Invoice:
        """A leg's destination invoice within the recipient's budget; NoInvoiceBudget when it must wait."""
        ...
