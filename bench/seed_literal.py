"""The seed's JavaScript HybridTipStore ported line by line to Python: a BASELINE for bench/, never used by tipsplit.

Kept deliberately as the seed wrote it (`shared/seed/hybrid-storage-architecture.md`,
"lib/tip-store-hybrid.js"), including what tipsplit does differently on purpose:

- storeTipData writes Redis first, then PostgreSQL, so a crash in between leaves an
  unrecorded payment in the cache; its two INSERTs are separate statements, each on
  its own pool checkout (`db.query`), not one transaction;
- the Redis value holds tipData as given (the API key in clear; this bench passes
  a fake key);
- getTipData records a `system_metrics` row per cache hit and per miss
  (MetricsCollector.recordRedisHit / recordRedisMiss), one INSERT each;
- removeTipData runs UPDATE + INSERT event (+ the stats upsert on success) in one
  transaction, then DELs the Redis key; the lock is the seed's `lock:payment:{hash}`
  → "1" with a 5-minute TTL, taken with SET NX and dropped with DEL (no token).

It runs on the seed's own schema (SEED_SCHEMA: the document's tables as valid
PostgreSQL, inline INDEX clauses turned into CREATE INDEX) in a database of its own.
"""

import json
import time
from collections.abc import Mapping
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tipsplit.keyring import KeyRing

SEED_SCHEMA = """
CREATE TABLE payment_splits (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) UNIQUE NOT NULL,
    user_wallet_id VARCHAR(100) NOT NULL,
    user_api_key_encrypted TEXT NOT NULL,
    username VARCHAR(50),
    total_amount BIGINT NOT NULL,
    base_amount BIGINT NOT NULL,
    tip_amount BIGINT NOT NULL,
    tip_percent DECIMAL(5,2),
    display_currency VARCHAR(10) DEFAULT 'BTC',
    base_amount_display DECIMAL(20,8),
    tip_amount_display DECIMAL(20,8),
    tip_recipient VARCHAR(50),
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    paid_at TIMESTAMP,
    processed_at TIMESTAMP,
    user_payment_hash VARCHAR(64),
    tip_payment_hash VARCHAR(64),
    error_message TEXT,
    memo TEXT,
    invoice_satoshis BIGINT
);
CREATE INDEX idx_payment_hash ON payment_splits (payment_hash);
CREATE INDEX idx_user_wallet ON payment_splits (user_wallet_id);
CREATE INDEX idx_created_at ON payment_splits (created_at);
CREATE INDEX idx_status ON payment_splits (status);
CREATE INDEX idx_tip_recipient ON payment_splits (tip_recipient);

CREATE TABLE payment_events (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) NOT NULL,
    event_type VARCHAR(50) NOT NULL,
    event_data JSONB,
    timestamp TIMESTAMP NOT NULL DEFAULT NOW(),
    FOREIGN KEY (payment_hash) REFERENCES payment_splits(payment_hash)
);
CREATE INDEX idx_payment_hash_events ON payment_events (payment_hash);
CREATE INDEX idx_event_type ON payment_events (event_type);
CREATE INDEX idx_timestamp ON payment_events (timestamp);

CREATE TABLE tip_recipients_stats (
    id BIGSERIAL PRIMARY KEY,
    recipient_username VARCHAR(50) UNIQUE NOT NULL,
    total_tips_received BIGINT DEFAULT 0,
    total_tips_count INTEGER DEFAULT 0,
    average_tip_amount DECIMAL(20,2),
    first_tip_received_at TIMESTAMP,
    last_tip_received_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_recipient ON tip_recipients_stats (recipient_username);

CREATE TABLE system_metrics (
    id BIGSERIAL PRIMARY KEY,
    metric_name VARCHAR(100) NOT NULL,
    metric_value DECIMAL(20,4),
    metric_unit VARCHAR(20),
    timestamp TIMESTAMP NOT NULL DEFAULT NOW(),
    metadata JSONB
);
CREATE INDEX idx_metric_name ON system_metrics (metric_name);
CREATE INDEX idx_timestamp_metrics ON system_metrics (timestamp);
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class SeedLiteralStore:
    """hybridStore of lib/tip-store-hybrid.js, with redisClient, dbClient and MetricsCollector folded in."""

    def __init__(self, database_url: str, redis_url: str, keyring: KeyRing, *, key_prefix: str = "",
                 pool_min: int = 2, pool_max: int = 10) -> None:
        self._database_url = database_url
        self._redis_url = redis_url
        self._keyring = keyring  # AuthManager.encryptApiKey / decryptApiKey
        self._prefix = key_prefix
        self._pool_min = pool_min
        self._pool_max = pool_max
        self.redis: aioredis.Redis | None = None
        self.pool: asyncpg.Pool | None = None

    async def initialize(self) -> None:
        self.redis = aioredis.Redis.from_url(self._redis_url, decode_responses=True)
        await self.redis.ping()
        self.pool = await asyncpg.create_pool(self._database_url, min_size=self._pool_min, max_size=self._pool_max)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.redis is not None:
            await self.redis.aclose()

    # dbClient.query: one pool checkout per statement
    async def query(self, text: str, *params: Any) -> list[asyncpg.Record]:
        assert self.pool is not None
        async with self.pool.acquire() as client:
            return await client.fetch(text, *params)

    # MetricsCollector.recordMetric: one INSERT per sample
    async def record_metric(self, name: str, value: float, unit: str = "count",
                            metadata: Mapping[str, Any] | None = None) -> None:
        await self.query(
            "INSERT INTO system_metrics (metric_name, metric_value, metric_unit, metadata) VALUES ($1, $2, $3, $4)",
            name, value, unit, json.dumps(metadata or {}),
        )

    async def store_tip_data(self, payment_hash: str, tip_data: Mapping[str, Any]) -> None:
        assert self.redis is not None
        # Step 1: Store in Redis (hot cache)
        key = f"{self._prefix}tip:{payment_hash}"
        value = json.dumps({**tip_data, "createdAt": _now_ms(), "expiresAt": _now_ms() + 24 * 60 * 60 * 1000})
        await self.redis.set(key, value, ex=86400)  # redis.setex(key, 86400, value)
        # Step 2: Store in Postgres (persistent)
        encrypted_api_key = self._keyring.encrypt(tip_data["userApiKey"])
        await self.query(
            """
            INSERT INTO payment_splits (
              payment_hash, user_wallet_id, user_api_key_encrypted,
              total_amount, base_amount, tip_amount, tip_percent,
              display_currency, base_amount_display, tip_amount_display,
              tip_recipient, status, memo
            ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (payment_hash) DO NOTHING
            """,
            payment_hash,
            tip_data["userWalletId"],
            encrypted_api_key,
            (tip_data.get("baseAmount") or 0) + (tip_data.get("tipAmount") or 0),
            tip_data.get("baseAmount") or 0,
            tip_data.get("tipAmount") or 0,
            tip_data.get("tipPercent") or 0,
            tip_data.get("displayCurrency") or "BTC",
            tip_data.get("baseAmountDisplay"),
            tip_data.get("tipAmountDisplay"),
            tip_data.get("tipRecipient"),
            "pending",
            tip_data.get("memo"),
        )
        # Log event
        await self.query(
            "INSERT INTO payment_events (payment_hash, event_type, event_data) VALUES ($1, $2, $3)",
            payment_hash, "created", json.dumps(dict(tip_data)),
        )

    async def get_tip_data(self, payment_hash: str) -> dict[str, Any] | None:
        assert self.redis is not None
        # Step 1: Try Redis first (fastest)
        key = f"{self._prefix}tip:{payment_hash}"
        cached = await self.redis.get(key)
        if cached:
            await self.record_metric("redis_cache_hit", 1)
            return json.loads(cached)  # type: ignore[no-any-return]
        await self.record_metric("redis_cache_miss", 1)
        # Step 2: Fallback to Postgres
        rows = await self.query(
            """
            SELECT payment_hash, user_wallet_id, user_api_key_encrypted,
                   base_amount, tip_amount, tip_percent,
                   display_currency, base_amount_display, tip_amount_display,
                   tip_recipient, status
            FROM payment_splits
            WHERE payment_hash = $1 AND status = 'pending'
            """,
            payment_hash,
        )
        if rows:
            row = rows[0]
            tip_data = {
                "baseAmount": int(row["base_amount"]),
                "tipAmount": int(row["tip_amount"]),
                "tipPercent": float(row["tip_percent"]),
                "tipRecipient": row["tip_recipient"],
                "userApiKey": self._keyring.decrypt(row["user_api_key_encrypted"]),
                "userWalletId": row["user_wallet_id"],
                "displayCurrency": row["display_currency"],
                "baseAmountDisplay": float(row["base_amount_display"]) if row["base_amount_display"] is not None else None,
                "tipAmountDisplay": float(row["tip_amount_display"]) if row["tip_amount_display"] is not None else None,
            }
            # Restore to Redis for next lookup
            await self.redis.set(key, json.dumps(tip_data), ex=86400)  # redis.setex
            return tip_data
        return None

    async def acquire_lock(self, payment_hash: str) -> bool:
        assert self.redis is not None
        return bool(await self.redis.set(f"{self._prefix}lock:payment:{payment_hash}", "1", ex=300, nx=True))

    async def release_lock(self, payment_hash: str) -> None:
        assert self.redis is not None
        await self.redis.delete(f"{self._prefix}lock:payment:{payment_hash}")

    async def remove_tip_data(self, payment_hash: str, result: Mapping[str, Any]) -> None:
        assert self.redis is not None and self.pool is not None
        success = bool(result.get("success"))
        # Step 1: Mark as processed in Postgres (dbClient.transaction)
        async with self.pool.acquire() as client:
            async with client.transaction():
                await client.execute(
                    """
                    UPDATE payment_splits
                    SET status = $1, processed_at = NOW(), user_payment_hash = $2, tip_payment_hash = $3,
                        error_message = $4
                    WHERE payment_hash = $5
                    """,
                    "completed" if success else "failed",
                    result.get("userPaymentHash"),
                    result.get("tipPaymentHash"),
                    result.get("error"),
                    payment_hash,
                )
                await client.execute(
                    "INSERT INTO payment_events (payment_hash, event_type, event_data) VALUES ($1, $2, $3)",
                    payment_hash, "completed" if success else "failed", json.dumps(dict(result)),
                )
                if success and result.get("tipRecipient") and result.get("tipAmount"):
                    await client.execute(
                        """
                        INSERT INTO tip_recipients_stats
                          (recipient_username, total_tips_received, total_tips_count,
                           first_tip_received_at, last_tip_received_at)
                        VALUES ($1, $2, 1, NOW(), NOW())
                        ON CONFLICT (recipient_username) DO UPDATE SET
                          total_tips_received = tip_recipients_stats.total_tips_received + $2,
                          total_tips_count = tip_recipients_stats.total_tips_count + 1,
                          last_tip_received_at = NOW(),
                          updated_at = NOW()
                        """,
                        result["tipRecipient"], result["tipAmount"],
                    )
        # Step 2: Remove from Redis
        await self.redis.delete(f"{self._prefix}tip:{payment_hash}")
