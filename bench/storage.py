"""Sections 1, 2 and 4: store/get latency against the file store, lifecycle throughput against the seed and the limit."""

import asyncio
import base64
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis

from bench.common import Servers, cpu_seconds, execute, ratio, summary
from bench.seed_literal import SEED_SCHEMA, SeedLiteralStore
from tipsplit.keyring import KeyRing
from tipsplit.settings import Settings
from tipsplit.store.hybrid import HybridTipStore
from tipsplit.store.legacy_file import FileTipStore, atomic_write
from tipsplit.store.schema import apply_migrations

API_KEY = "blink_bench_not_a_real_key_0123456789"
KEY = bytes(range(32))
ENCRYPTION_KEYS = "b1:" + base64.b64encode(KEY).decode()


def keyring() -> KeyRing:
    return KeyRing({"b1": KEY})


def tip_data() -> dict[str, Any]:
    """The seed's tip data shape with one recipient, so the seed's store and tipsplit do the same work."""
    return {
        "baseAmount": 10_000,
        "tipAmount": 1_500,
        "tipPercent": 15,
        "tipRecipient": "alice",
        "userApiKey": API_KEY,
        "userWalletId": "merchant-wallet-1",
        "displayCurrency": "USD",
        "baseAmountDisplay": 10.0,
        "tipAmountDisplay": 1.5,
        "memo": "table 4",
    }


def new_hash() -> str:
    return secrets.token_hex(32)


def hybrid_settings(database_url: str, servers: Servers, data_dir: Path, pool_max: int) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        redis_url=servers.redis_url,
        redis_key_prefix=servers.prefix,
        fallback_to_file_storage=False,
        encryption_keys=ENCRYPTION_KEYS,
        data_dir=data_dir,
        tip_store_file=data_dir / ".tip-store.json",
        database_pool_min=min(2, pool_max),
        database_pool_max=pool_max,
    )


async def open_hybrid(database_url: str, servers: Servers, data_dir: Path, pool_max: int = 10) -> HybridTipStore:
    store = HybridTipStore(hybrid_settings(database_url, servers, data_dir, pool_max), keyring())
    await store.initialize(migrate=False)
    return store


def bulk_load(url: str, rows: int, *, events: bool = True) -> float:
    """`rows` finished payments (and one event each) spread over 30 days, straight from generate_series."""
    started = time.perf_counter()
    step = 250_000
    with psycopg.connect(url, autocommit=True) as conn:
        for low in range(1, rows + 1, step):
            high = min(rows, low + step - 1)
            conn.execute(
                """
                INSERT INTO payment_splits (payment_hash, user_wallet_id, user_api_key_encrypted, total_amount,
                    base_amount, tip_amount, tip_percent, display_currency, tip_recipient, status, created_at,
                    expires_at, paid_at, processed_at, invoice_satoshis, memo)
                SELECT encode(sha256(convert_to('bulk-' || g, 'UTF8')), 'hex'), 'wallet-' || (g %% 500),
                       'enc:v1:b1:bulk', 1150 + g %% 100, 1000 + g %% 100, 150, 15, 'USD', 'user' || (g %% 200),
                       CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'completed' END,
                       now() - make_interval(secs => (g %% 2592000)::float8),
                       now() - make_interval(secs => (g %% 2592000)::float8) + interval '1 day',
                       now() - make_interval(secs => (g %% 2592000)::float8),
                       now() - make_interval(secs => (g %% 2592000)::float8), 1150 + g %% 100, 'bulk'
                FROM generate_series(%s::int, %s::int) AS g
                """,
                (low, high),
            )
            if events:
                conn.execute(
                    """
                    INSERT INTO payment_events (payment_hash, event_type, event_data, "timestamp")
                    SELECT encode(sha256(convert_to('bulk-' || g, 'UTF8')), 'hex'), 'completed',
                           '{"bulk":true}'::jsonb, now() - make_interval(secs => (g %% 2592000)::float8)
                    FROM generate_series(%s::int, %s::int) AS g
                    """,
                    (low, high),
                )
        conn.execute("VACUUM ANALYZE payment_splits")
        conn.execute("VACUUM ANALYZE payment_events")
    return round(time.perf_counter() - started, 1)


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL server processes serving `url`'s database (a store's pool), other than this query's own."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def backends_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def throughput(operation: Callable[[], Awaitable[None]], total: int, concurrency: int,
                     database_url: str | None = None) -> dict[str, Any]:
    """Run `operation` `total` times on `concurrency` tasks; rate, latency and this process's CPU per operation.

    With `database_url`, also the CPU its PostgreSQL backends spent per operation (the pool must be warm).
    """
    latencies: list[float] = []
    work = iter(range(total))

    async def worker() -> None:
        for _ in work:
            started = time.perf_counter()
            await operation()
            latencies.append((time.perf_counter() - started) * 1000)

    pids = backend_pids(database_url) if database_url else []
    server_cpu = backends_cpu(pids)
    cpu = process_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = process_cpu() - cpu
    server_cpu = backends_cpu(pids) - server_cpu
    result = {
        "concurrency": concurrency,
        "operations": total,
        "seconds": round(elapsed, 3),
        "per_second": round(total / elapsed, 1),
        "python_cpu_ms_per_op": round(cpu * 1000 / total, 3),
        **summary(latencies),
    }
    if pids:
        result["postgres_cpu_ms_per_op"] = round(server_cpu * 1000 / total, 3)
    return result


async def sequential(operation: Callable[[], Awaitable[Any]], count: int) -> dict[str, Any]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await operation()
        latencies.append((time.perf_counter() - started) * 1000)
    return summary(latencies)


# -- section 1 ----------------------------------------------------------------


def _file_entry(encrypted: str) -> dict[str, Any]:
    return {**tip_data(), "userApiKey": encrypted, "timestamp": int(time.time() * 1000)}


async def latency_section(servers: Servers, sizes: list[int], ops: int, file_ops: dict[int, int]) -> dict[str, Any]:
    """Durable store, Redis-hit get and Redis-miss get at concurrency 1, against the file store, per store size."""
    results: dict[str, Any] = {}
    ring = keyring()
    encrypted = ring.encrypt(API_KEY)
    raw = aioredis.from_url(servers.redis_url)
    try:
        for size in sizes:
            url = servers.database(f"lat{size}")
            apply_migrations(url)
            load_seconds = bulk_load(url, size, events=True)
            with tempfile.TemporaryDirectory(prefix="tipsplit-bench-") as tmp:
                store = await open_hybrid(url, servers, Path(tmp))
                try:
                    for _ in range(20):  # warm the pool, prepared statements and caches
                        await store.store_tip_data(new_hash(), tip_data())
                    hashes: list[str] = []

                    async def store_one() -> None:
                        payment_hash = new_hash()
                        await store.store_tip_data(payment_hash, tip_data())
                        hashes.append(payment_hash)

                    durable = await sequential(store_one, ops)
                    hits = iter(list(hashes))
                    hit = await sequential(lambda: store.get_tip_data(next(hits)), ops)
                    misses = list(hashes)
                    miss_latencies = []
                    for payment_hash in misses:
                        await raw.delete(f"{servers.prefix}tip:{{{payment_hash}}}")
                        started = time.perf_counter()
                        found = await store.get_tip_data(payment_hash)
                        miss_latencies.append((time.perf_counter() - started) * 1000)
                        assert found is not None
                    miss = summary(miss_latencies)
                finally:
                    await store.close()
                await servers.forget_keys()
                file_path = Path(tmp) / "tip-store.json"
                prefill = {new_hash(): _file_entry(encrypted) for _ in range(size)}
                atomic_write(file_path, json.dumps(prefill, indent=2).encode())
                file_store = FileTipStore(file_path, ring)
                known = list(prefill)
                n_file = file_ops.get(size, ops)

                async def file_store_one() -> None:
                    file_store.store(new_hash(), tip_data())

                file_put = await sequential(file_store_one, n_file)
                picks = iter(known[i % len(known)] for i in range(n_file)) if known else iter([new_hash()] * n_file)

                async def file_get_one() -> None:
                    file_store.get(next(picks))

                file_get = await sequential(file_get_one, n_file)
                file_bytes = file_path.stat().st_size
            servers.drop(url)
            results[str(size)] = {
                "entries": size,
                "bulk_load_seconds": load_seconds,
                "hybrid_durable_store": durable,
                "hybrid_get_redis_hit": hit,
                "hybrid_get_redis_miss": miss,
                "file_store": file_put,
                "file_get": file_get,
                "file_bytes": file_bytes,
                "ratios": {
                    "file_store_p50_over_hybrid_store_p50": ratio(file_put["p50_ms"], durable["p50_ms"]),
                    "file_get_p50_over_hybrid_hit_p50": ratio(file_get["p50_ms"], hit["p50_ms"]),
                    "file_get_p50_over_hybrid_miss_p50": ratio(file_get["p50_ms"], miss["p50_ms"]),
                },
            }
    finally:
        await raw.aclose()
    return results


# -- section 2 ----------------------------------------------------------------


FAILURE = {"success": False, "error": "bench archive"}


def tipsplit_lifecycle(store: HybridTipStore) -> Callable[[], Awaitable[None]]:
    """store → lock → get (Redis hit) → archive and unlock (remove_tip_data with the lock token), through the public API."""

    async def run() -> None:
        payment_hash = new_hash()
        await store.store_tip_data(payment_hash, tip_data())
        token = await store.acquire_lock(payment_hash)
        found = await store.get_tip_data(payment_hash)
        assert found is not None and token is not None
        await store.remove_tip_data(payment_hash, FAILURE, lock_token=token)

    return run


def seed_lifecycle(store: SeedLiteralStore) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        payment_hash = new_hash()
        await store.store_tip_data(payment_hash, tip_data())
        locked = await store.acquire_lock(payment_hash)
        found = await store.get_tip_data(payment_hash)
        assert found is not None and locked
        await store.remove_tip_data(payment_hash, FAILURE)
        await store.release_lock(payment_hash)

    return run


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, carrying every round's rate so the spread stays visible."""
    ordered = sorted(runs, key=lambda run: run["per_second"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds_per_second": [run["per_second"] for run in runs]}


async def lifecycle_pair(servers: Servers, url: str, counts: dict[int, int], *, pool_max: int = 10,
                         seed: bool = True, warmup: int = 100, rounds: int = 1) -> dict[str, Any]:
    """tipsplit (and the seed-literal port, in its own database) at each concurrency, alternating, `rounds` times;
    each figure is the round with the median rate."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"tipsplit": {}, "seed_literal": {}}
    seed_url = None
    with tempfile.TemporaryDirectory(prefix="tipsplit-bench-") as tmp:
        store = await open_hybrid(url, servers, Path(tmp), pool_max)
        seed_store = None
        if seed:
            seed_url = servers.database("seed")
            execute(seed_url, SEED_SCHEMA)
            seed_store = SeedLiteralStore(seed_url, servers.redis_url, keyring(), key_prefix=servers.prefix + "seed:",
                                          pool_min=min(2, pool_max), pool_max=pool_max)
            await seed_store.initialize()
        try:
            ours = tipsplit_lifecycle(store)
            await throughput(ours, warmup, 64)
            if seed_store is not None:
                await throughput(seed_lifecycle(seed_store), warmup, 64)
            for _ in range(rounds):
                for concurrency, total in counts.items():
                    runs["tipsplit"].setdefault(str(concurrency), []).append(
                        await throughput(ours, total, concurrency, url))
                    if seed_store is not None:
                        runs["seed_literal"].setdefault(str(concurrency), []).append(
                            await throughput(seed_lifecycle(seed_store), total, concurrency, seed_url))
        finally:
            await store.close()
            if seed_store is not None:
                await seed_store.close()
            if seed_url is not None:
                servers.drop(seed_url)
    results = {store_name: {conc: median_round(each) for conc, each in by_conc.items()}
               for store_name, by_conc in runs.items()}
    if not seed:
        del results["seed_literal"]
    return results
