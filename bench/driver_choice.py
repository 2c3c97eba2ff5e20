"""asyncpg vs psycopg 3 (async pool) on the store + get lifecycle of a payment.

Each operation is what the hot path does: one transaction inserting a
payment row, its legs and its `created` event, then reading the row and its
legs back. Run: `.venv/bin/python bench/driver_choice.py [DATABASE_URL]`
(a throw-away database is created and dropped). psycopg's pool comes from
the `psycopg-pool` package, needed only here.
"""

import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.support.databases import create_database, drop_database  # noqa: E402
from tipsplit.store.schema import apply_migrations  # noqa: E402

OPERATIONS = 2000
POOL_SIZE = 10

INSERT_PAYMENT = """
INSERT INTO payment_splits (payment_hash, user_wallet_id, user_api_key_encrypted, total_amount, base_amount,
                            tip_amount, tip_percent, expires_at)
VALUES ({0}, 'wallet', 'enc:v1:k1:xxxx', 1150, 1000, 150, 15, now() + interval '1 day')
"""
INSERT_LEG = "INSERT INTO payment_legs (payment_hash, leg, destination_wallet_id, amount) VALUES ({0}, {1}, 'w', {2})"
INSERT_EVENT = "INSERT INTO payment_events (payment_hash, event_type, event_data) VALUES ({0}, 'created', {1})"
SELECT_PAYMENT = "SELECT * FROM payment_splits WHERE payment_hash = {0}"
SELECT_LEGS = "SELECT * FROM payment_legs WHERE payment_hash = {0} ORDER BY leg"


def asyncpg_sql(template: str) -> str:
    return template.format("$1", "$2", "$3")


def psycopg_sql(template: str) -> str:
    return template.format("%s", "%s", "%s")


async def asyncpg_lifecycle(url: str) -> Callable[[], Awaitable[None]]:
    pool = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)

    async def run() -> None:
        payment_hash = secrets.token_hex(32)
        async with pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute(asyncpg_sql(INSERT_PAYMENT), payment_hash)
                await conn.execute(asyncpg_sql(INSERT_LEG), payment_hash, "base", 1000)
                await conn.execute(asyncpg_sql(INSERT_LEG), payment_hash, "tip:1", 150)
                await conn.execute(asyncpg_sql(INSERT_EVENT), payment_hash, json.dumps({"total": 1150}))
            await conn.fetchrow(asyncpg_sql(SELECT_PAYMENT), payment_hash)
            await conn.fetch(asyncpg_sql(SELECT_LEGS), payment_hash)

    run.close = pool.close  # type: ignore[attr-defined]
    return run


async def psycopg_lifecycle(url: str) -> Callable[[], Awaitable[None]]:
    pool = AsyncConnectionPool(url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False)
    await pool.open(wait=True)

    async def run() -> None:
        payment_hash = secrets.token_hex(32)
        async with pool.connection() as conn:
            async with conn.transaction():
                await conn.execute(psycopg_sql(INSERT_PAYMENT), (payment_hash,))
                await conn.execute(psycopg_sql(INSERT_LEG), (payment_hash, "base", 1000))
                await conn.execute(psycopg_sql(INSERT_LEG), (payment_hash, "tip:1", 150))
                await conn.execute(psycopg_sql(INSERT_EVENT), (payment_hash, json.dumps({"total": 1150})))
            await (await conn.execute(psycopg_sql(SELECT_PAYMENT), (payment_hash,))).fetchone()
            await (await conn.execute(psycopg_sql(SELECT_LEGS), (payment_hash,))).fetchall()

    run.close = pool.close  # type: ignore[attr-defined]
    return run


async def measure(run: Callable[[], Awaitable[None]], concurrency: int) -> tuple[float, float]:
    """Operations per second and median latency (ms) for OPERATIONS lifecycles at a given concurrency."""
    latencies: list[float] = []
    queue = iter(range(OPERATIONS))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            await run()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return OPERATIONS / elapsed, statistics.median(latencies)


async def main() -> None:
    url = create_database("tipsplit_bench")
    try:
        apply_migrations(url)
        drivers = {"asyncpg": await asyncpg_lifecycle(url), "psycopg3": await psycopg_lifecycle(url)}
        for run in drivers.values():
            await measure(run, 10)
        for concurrency in (1, 20):
            for name, run in drivers.items():
                rate, median = await measure(run, concurrency)
                print(f"{name:9s} concurrency={concurrency:2d}  {rate:7.0f} ops/s  median {median:6.2f} ms")
        for run in drivers.values():
            await run.close()  # type: ignore[attr-defined]
    finally:
        drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
