"""The Settler on real PostgreSQL and Redis, with Blink replaced by the in-memory fake of its port.

Fast: no simulator, no HTTP. Every branch of settlement can be reached by
scripting the fake; the ledger the fake keeps says what moved.
"""

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.services.fake_blink import FakeBlink
from tests.store.conftest import hybrid_settings, new_hash, tip_dict
from tipsplit.blink.types import InvoiceStatus, PublicWallet
from tipsplit.domain.models import TipData, plan_legs
from tipsplit.domain.records import LegRecord, PaymentRecord
from tipsplit.domain.retry import RetryPolicy
from tipsplit.domain.states import WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.services.pos_accounts import PosAccount, PosAccounts
from tipsplit.services.settlement import SettlePolicy, Settler
from tipsplit.store.budget import BudgetPolicy, InvoiceBudget
from tipsplit.store.stack import StoreStack
from tipsplit.store.payments import NewPayment
from tipsplit.store.schema import apply_migrations

MERCHANT_WALLET = "merchant-wallet-1"
USERS = {
    "alice_tips": PublicWallet("alice-wallet", "BTC"),
    "bob_tips": PublicWallet("bob-wallet", "BTC"),
    "carol_usd": PublicWallet("carol-usd-wallet", "USD"),
    "dave_tips": PublicWallet("dave-wallet", "BTC"),
    "erin_tips": PublicWallet("erin-wallet", "BTC"),
}
# Small enough that backoff is observable in a fast test, large enough to tell "not due yet" apart.
RETRY = RetryPolicy(base_seconds=0.2, cap_seconds=0.4, attempts=3)
TEST_API_KEY = "blink_FakeBlinkMerchantKey_never_logged"


@dataclass
class Harness:
    """One store, one fake Blink, the POS account pool over it, and a settler; helpers to look and nudge."""

    store: StoreStack
    blink: FakeBlink
    accounts: PosAccounts
    budget: InvoiceBudget
    keyring: KeyRing
    database_url: str
    policy: SettlePolicy
    settler: Settler = field(init=False)

    def __post_init__(self) -> None:
        self.settler = self.another_settler()

    def another_settler(self) -> Settler:
        """A settler of another instance: same store and Blink, its own claim owner."""
        return Settler(self.store.pg, self.store.hot, self.accounts, self.policy, metrics=self.store.metrics)

    async def sale(
        self, *, paid: bool = True, resolved: bool = False, expires_in: timedelta = timedelta(hours=1), **tip: Any
    ) -> str:
        """Store a sale as create-invoice would and tell the fake whether its POS invoice is paid.

        With `resolved` the recipients' wallets are known at creation (as the service stores them);
        without, settlement looks each one up by username.
        """
        payment_hash = new_hash()
        data = TipData.model_validate(tip_dict(userApiKey=TEST_API_KEY, **tip))
        wallets = {name: wallet.id for name, wallet in USERS.items()} if resolved else {}
        currencies = {wallet.id: WalletCurrency(wallet.currency) for wallet in USERS.values()} if resolved else None
        await self.store.pg.payments.insert(
            NewPayment(
                payment_hash, data, self.keyring.encrypt(TEST_API_KEY), plan_legs(data), datetime.now(UTC) + expires_in,
                recipient_wallets=wallets, wallet_currencies=currencies or {},
            )
        )
        self.blink.pos_invoice(payment_hash, InvoiceStatus.PAID if paid else InvoiceStatus.PENDING)
        return payment_hash

    async def payment(self, payment_hash: str) -> PaymentRecord:
        payment = await self.store.pg.payments.get(payment_hash)
        assert payment is not None
        return payment

    async def legs(self, payment_hash: str) -> dict[str, LegRecord]:
        return {leg.leg: leg for leg in (await self.payment(payment_hash)).legs}

    async def events(self, payment_hash: str) -> list[str]:
        return [event.event_type for event in await self.store.pg.events.of_payment(payment_hash)]

    async def sql(self, statement: str, *arguments: Any) -> str:
        conn = await asyncpg.connect(self.database_url)
        try:
            return str(await conn.execute(statement, *arguments))
        finally:
            await conn.close()

    async def lapse(self, payment_hash: str) -> None:
        """The claim's lease runs out: what the reconciler takes up (crash, or the settler's next look)."""
        await self.sql(
            "UPDATE payment_splits SET claim_expires_at = now() - interval '1 second' WHERE payment_hash = $1",
            payment_hash,
        )


@pytest.fixture(scope="session")
def settle_database_url(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture()
async def harness(settle_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path) -> AsyncIterator[Harness]:
    keyring = KeyRing({"k1": os.urandom(32)})
    settings = hybrid_settings(
        settle_database_url, redis_url, key_prefix, tmp_path,
        leg_retry_base_seconds=RETRY.base_seconds, max_leg_attempts=RETRY.attempts,
    )
    store = StoreStack(settings, keyring)
    await store.initialize(migrate=False)
    blink = FakeBlink(users=dict(USERS))
    budget = InvoiceBudget(store.hot, BudgetPolicy(points=60, window_seconds=60, block_seconds=300, margin=3))
    accounts = PosAccounts([PosAccount(blink.pos_wallet_id, blink, "pos-1")], budget)  # type: ignore[arg-type]
    try:
        yield Harness(store, blink, accounts, budget, keyring, settle_database_url, SettlePolicy(60, RETRY))
    finally:
        await store.close()
