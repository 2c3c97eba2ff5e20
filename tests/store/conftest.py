"""Fixtures of the store tests: a migrated database, a PostgresStore on it, and tip data that is easy to vary."""

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tipsplit.domain.models import TipData, plan_legs
from tipsplit.domain.states import LegStatus
from tipsplit.keyring import KeyRing
from tipsplit.settings import Settings
from tipsplit.store.hybrid import HybridTipStore
from tipsplit.store.payments import NewPayment
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.redis_client import connect_redis
from tipsplit.store.schema import apply_migrations

TEST_API_KEY = "blink_PlaintextTestKey_MUST_NOT_LEAK_7f3a9c"


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    """The session database with the schema applied."""
    apply_migrations(database_url)
    return database_url


@pytest.fixture(scope="session")
def keyring() -> KeyRing:
    return KeyRing({"old": os.urandom(32), "k1": os.urandom(32)})


@pytest.fixture()
async def pg(migrated_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.connect(migrated_url, min_size=1, max_size=20)
    yield store
    await store.close()


def new_hash() -> str:
    return secrets.token_hex(32)


def tip_dict(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "baseAmount": 10_000,
        "tipAmount": 1_500,
        "tipPercent": 15,
        "tipRecipients": [{"username": "alice_tips", "share": 60}, {"username": "bob_tips", "share": 40}],
        "userApiKey": TEST_API_KEY,
        "userWalletId": "merchant-wallet-1",
        "displayCurrency": "USD",
        "baseAmountDisplay": 10.0,
        "tipAmountDisplay": 1.5,
        "memo": "table 4",
    }
    data.update(overrides)
    return data


async def insert(pg: PostgresStore, keyring: KeyRing, payment_hash: str | None = None, **overrides: Any) -> str:
    """Insert a payment straight into PostgreSQL and return its hash."""
    payment_hash = payment_hash or new_hash()
    tip = TipData.model_validate(tip_dict(**overrides))
    expires = tip.expires_at or datetime.now(UTC) + timedelta(hours=1)
    await pg.payments.insert(NewPayment(payment_hash, tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip), expires))
    return payment_hash


async def settle_all_legs(pg: PostgresStore, payment_hash: str) -> None:
    """Drive every open leg to succeeded the way the settlement engine does."""
    for leg in await pg.legs.of_payment(payment_hash):
        if leg.status == LegStatus.SKIPPED:
            continue
        await pg.legs.set_invoice(payment_hash, leg.leg, new_hash(), f"lnbc{leg.amount}")
        assert await pg.legs.transition(payment_hash, leg.leg, {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True)
        assert await pg.legs.transition(payment_hash, leg.leg, {LegStatus.PAYING}, LegStatus.SUCCEEDED)


def hybrid_settings(database_url: str, redis_url: str | None, key_prefix: str, tmp_path: Any, **overrides: Any) -> Settings:
    """Settings for a HybridTipStore under test: its own key prefix and files."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_key_prefix": key_prefix,
        "fallback_to_file_storage": False,
        "journal_file": tmp_path / "journal.jsonl",
        "tip_store_file": tmp_path / ".tip-store.json",
        "database_pool_min": 1,
        "database_pool_max": 20,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture()
async def store(migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing) -> AsyncIterator[HybridTipStore]:
    """A HybridTipStore on the migrated database and this test's Redis prefix."""
    hybrid = HybridTipStore(hybrid_settings(migrated_url, redis_url, key_prefix, tmp_path), keyring)
    await hybrid.initialize(migrate=False)
    yield hybrid
    await hybrid.close()


@pytest.fixture()
async def raw(redis_url: str) -> AsyncIterator[Any]:
    """A plain Redis client, to look at or break the keys a store wrote."""
    client = connect_redis(redis_url, decode_responses=True)
    yield client
    await client.aclose()
