"""The POS accounts that receive sales, and the invoice budget each one may spend on Blink.

Blink allows each account 60 invoice creations a minute on its own wallets,
so one POS account caps a deployment at about a sale a second. A pool of
accounts raises the cap: each sale goes to the next account with budget
left, the payment remembers which one received it, and its legs are paid
from that same account. Leg invoices spend the *recipient's* budget
(invoices created on its behalf), which is why a leg may have to wait.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkError, BlinkRateLimited
from tipsplit.blink.types import Invoice
from tipsplit.domain.states import WalletCurrency
from tipsplit.observability import BLINK_RATE_LIMITED, INVOICE_BUDGET_WAITS, POS_BALANCE, POS_INVOICE_BUDGET
from tipsplit.services.blink_port import SettlingAccount
from tipsplit.settings import Settings
from tipsplit.store.budget import BudgetPolicy, BudgetState, InvoiceBudget, invoices_for, own_invoices
from tipsplit.store.claims import PosScope
from tipsplit.store.hot import HotStore

log = structlog.get_logger(__name__)


class NoInvoiceBudget(Exception):
    """No invoice can be created for this destination right now; `retry_after` says when one can."""

    def __init__(self, retry_after: int, reason: str) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


@dataclass(frozen=True)
class PosAccount:
    """One shared POS account: its BTC wallet and a client acting with its API key."""

    wallet_id: str
    client: BlinkClient
    label: str


@dataclass(frozen=True)
class AccountBudget:
    """One POS account's own-invoice budget, by label (no wallet id: health shows it publicly)."""

    label: str
    budget: BudgetState

    def public(self) -> dict[str, int | str]:
        return {
            "account": self.label,
            "invoiceBudgetRemaining": self.budget.remaining,
            "invoicesInWindow": self.budget.used,
            "blockedSeconds": self.budget.blocked_seconds,
        }


@dataclass(frozen=True)
class AccountStatus:
    """What an operator sees of one POS account: its budget and its BTC balance (None when Blink did not say)."""

    budget: AccountBudget
    balance: int | None


class PosAccounts:
    """Every POS account this instance may use, with the budget they share with every other instance."""

    def __init__(self, accounts: Sequence[PosAccount], budget: InvoiceBudget) -> None:
        if not accounts:
            raise ValueError("at least one POS account is needed")
        self._accounts = tuple(accounts)
        self._by_wallet = {account.wallet_id: account for account in self._accounts}
        self._budget = budget
        self._turn = 0

    @property
    def all(self) -> tuple[PosAccount, ...]:
        return self._accounts

    @property
    def default(self) -> PosAccount:
        """The account of payments stored before they recorded one: the first configured."""
        return self._accounts[0]

    @property
    def scope(self) -> PosScope:
        """The payments this instance settles: those received by its accounts."""
        return [account.wallet_id for account in self._accounts], self.default.wallet_id

    def for_payment(self, pos_wallet_id: str | None) -> PosAccount | None:
        """The account that received a payment, or None when it is not one of ours."""
        return self.default if pos_wallet_id is None else self._by_wallet.get(pos_wallet_id)

    async def create_sale_invoice(
        self, amount_sats: int, memo: str | None, expires_in_minutes: int
    ) -> tuple[PosAccount, Invoice]:
        """The POS invoice, on the next account (in turn) with budget left; NoInvoiceBudget when none has."""
        waits: list[int] = []
        start = self._turn
        self._turn = (self._turn + 1) % len(self._accounts)
        for offset in range(len(self._accounts)):
            account = self._accounts[(start + offset) % len(self._accounts)]
            bucket = own_invoices(account.wallet_id)
            taken = await self._budget.take(bucket)
            if not taken.allowed:
                waits.append(taken.retry_after)
                continue
            try:
                invoice = await account.client.create_invoice(account.wallet_id, amount_sats, memo, expires_in_minutes)
            except BlinkRateLimited:
                BLINK_RATE_LIMITED.labels(kind="pos").inc()
                await self._budget.blocked_by_blink(bucket)
                waits.append(int(self._budget.policy.block_seconds))
                continue
            return account, invoice
        INVOICE_BUDGET_WAITS.labels(kind="pos").inc()
        raise NoInvoiceBudget(max(1, min(waits)), "every POS account has used its Blink invoice budget for now")

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
        """A leg's destination invoice, spending the recipient's budget; NoInvoiceBudget when it has none left.

        The invoice is always for `amount_sats`; a USD wallet is credited the cents those sats buy at Blink's price.
        """
        bucket = invoices_for(recipient_wallet_id)
        taken = await self._budget.take(bucket)
        if not taken.allowed:
            INVOICE_BUDGET_WAITS.labels(kind="leg").inc()
            raise NoInvoiceBudget(taken.retry_after, "the destination's Blink invoice budget is used up for now")
        try:
            create = (
                account.client.create_usd_invoice_on_behalf_of_recipient
                if currency is WalletCurrency.USD
                else account.client.create_invoice_on_behalf_of_recipient
            )
            return await create(recipient_wallet_id, amount_sats, memo, expires_in_minutes, external_id=external_id)
        except BlinkRateLimited:
            BLINK_RATE_LIMITED.labels(kind="leg").inc()
            await self._budget.blocked_by_blink(bucket)
            INVOICE_BUDGET_WAITS.labels(kind="leg").inc()
            raise NoInvoiceBudget(
                int(self._budget.policy.block_seconds), "Blink blocked invoices to this destination for a while"
            ) from None

    async def budgets(self) -> list[AccountBudget]:
        return [AccountBudget(a.label, await self._budget.state(own_invoices(a.wallet_id))) for a in self._accounts]

    async def statuses(self) -> list[AccountStatus]:
        """Budgets and balances of every account (one `me` each: the operator's views only)."""
        budgets, balances = await asyncio.gather(
            self.budgets(), asyncio.gather(*(self._balance(a) for a in self._accounts))
        )
        for budget, balance in zip(budgets, balances, strict=True):
            POS_INVOICE_BUDGET.labels(account=budget.label).set(budget.budget.remaining)
            if balance is not None:
                POS_BALANCE.labels(account=budget.label).set(balance)
        return [AccountStatus(b, balance) for b, balance in zip(budgets, balances, strict=True)]

    @staticmethod
    async def _balance(account: PosAccount) -> int | None:
        try:
            me = await account.client.me()
        except BlinkError:
            return None
        wallet = me.wallet(account.wallet_id)
        return wallet.balance if wallet is not None else None


def budget_policy(settings: Settings) -> BudgetPolicy:
    return BudgetPolicy(
        points=settings.blink_invoice_limit_points,
        window_seconds=settings.blink_invoice_limit_window_seconds,
        block_seconds=settings.blink_invoice_limit_block_seconds,
        margin=settings.blink_invoice_limit_margin,
    )


def open_pos_accounts(settings: Settings, hot: HotStore | None) -> tuple[PosAccounts, BlinkClient]:
    """The configured POS accounts over one Blink connection pool; close the returned client when done."""
    if not settings.blink_api_url or not settings.pos_accounts:
        raise ValueError("POS accounts need BLINK_API_URL and BLINKPOS_ACCOUNTS (or BLINKPOS_API_KEY/_BTC_WALLET_ID)")
    pool = BlinkClient(settings.blink_api_url, None)
    accounts = [
        PosAccount(wallet_id, pool.with_api_key(api_key), f"pos-{number}")
        for number, (api_key, wallet_id) in enumerate(settings.pos_accounts, start=1)
    ]
    return PosAccounts(accounts, InvoiceBudget(hot, budget_policy(settings))), pool
