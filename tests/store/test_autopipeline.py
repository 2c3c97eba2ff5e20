"""Commands from concurrent tasks share round trips to a real Redis, and each caller still gets its own answer."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from tests.store.conftest import new_hash
from tests.support.tcp_proxy import TcpProxy, behind, proxy_for, unused_port
from tipsplit.store.autopipeline import AutoPipeline
from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.hot import HotStore


@pytest.fixture()
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    tcp = proxy_for(redis_url)
    await tcp.start()
    yield tcp
    await tcp.stop()


@pytest.fixture()
async def client(redis_url: str, proxy: TcpProxy) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.from_url(behind(redis_url, proxy.port), decode_responses=True)
    yield redis_client
    await redis_client.aclose()


@pytest.mark.single_redis
async def test_concurrent_commands_travel_together_and_answer_their_own_callers(
    client: aioredis.Redis, proxy: TcpProxy, key_prefix: str
) -> None:
    pipeline = AutoPipeline(client)
    keys = [f"{key_prefix}ap:{i}" for i in range(200)]
    await asyncio.gather(*(pipeline.execute("SET", key, f"value-{i}") for i, key in enumerate(keys)))
    replies = await asyncio.gather(*(pipeline.execute("GET", key) for key in keys))
    assert replies == [f"value-{i}" for i in range(200)]
    assert proxy.connections <= 2 and proxy.client_reads <= 10
    await client.delete(*keys)


@pytest.mark.single_redis
async def test_a_lone_command_is_sent_at_once(client: aioredis.Redis, proxy: TcpProxy, key_prefix: str) -> None:
    pipeline = AutoPipeline(client)
    await pipeline.execute("PING")
    before = proxy.client_reads
    for i in range(5):
        assert await pipeline.execute("SET", f"{key_prefix}ap:lone", i)
    assert await pipeline.execute("GET", f"{key_prefix}ap:lone") == "4"
    assert proxy.client_reads - before == 6
    await client.delete(f"{key_prefix}ap:lone")


@pytest.mark.single_redis
async def test_one_commands_error_reaches_only_its_caller(client: aioredis.Redis, key_prefix: str) -> None:
    pipeline = AutoPipeline(client)
    await client.lpush(f"{key_prefix}ap:list", "x")
    good, bad, also_good = await asyncio.gather(
        pipeline.execute("SET", f"{key_prefix}ap:a", "1"),
        pipeline.execute("GET", f"{key_prefix}ap:list"),
        pipeline.execute("GET", f"{key_prefix}ap:a"),
        return_exceptions=True,
    )
    assert good is True and also_good == "1"
    assert isinstance(bad, redis.exceptions.ResponseError) and "WRONGTYPE" in str(bad)
    await client.delete(f"{key_prefix}ap:list", f"{key_prefix}ap:a")


@pytest.mark.single_redis
async def test_a_cancelled_caller_does_not_disturb_the_others(client: aioredis.Redis, key_prefix: str) -> None:
    pipeline = AutoPipeline(client)
    doomed = pipeline.execute("SET", f"{key_prefix}ap:c", "1")
    kept = pipeline.execute("INCR", f"{key_prefix}ap:n")
    doomed.cancel()
    assert await kept == 1
    assert await client.get(f"{key_prefix}ap:c") == "1"
    await client.delete(f"{key_prefix}ap:c", f"{key_prefix}ap:n")


async def test_every_caller_of_a_lost_batch_gets_the_connection_error(key_prefix: str) -> None:
    gone = aioredis.from_url(f"redis://127.0.0.1:{unused_port()}/0", socket_connect_timeout=1)
    pipeline = AutoPipeline(gone)
    results = await asyncio.gather(
        *(pipeline.execute("GET", f"{key_prefix}ap:{i}") for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, redis.exceptions.ConnectionError) for r in results)
    await gone.aclose()


async def test_hot_store_reloads_its_scripts_after_a_script_flush(redis_url: str, key_prefix: str) -> None:
    hot = HotStore(redis_url, prefix=key_prefix)
    try:
        payment_hash = new_hash()
        token = await hot.acquire_lock(payment_hash)
        assert token is not None
        await hot._client.script_flush()
        assert await hot.release_lock(payment_hash, token)
        assert await hot.acquire_lock(payment_hash) is not None
    finally:
        await hot.close()


@pytest.mark.single_redis
async def test_hot_store_under_a_burst_shares_round_trips(redis_url: str, proxy: TcpProxy, key_prefix: str) -> None:
    hot = HotStore(behind(redis_url, proxy.port), prefix=key_prefix)
    try:
        hashes = [new_hash() for _ in range(100)]
        tokens = await asyncio.gather(*(hot.acquire_lock(h) for h in hashes))
        assert all(tokens) and len(set(tokens)) == 100
        assert await asyncio.gather(*(hot.acquire_lock(h) for h in hashes)) == [None] * 100
        assert all(await asyncio.gather(*(hot.release_lock(h, t) for h, t in zip(hashes, tokens, strict=True))))
        assert proxy.connections <= 3
    finally:
        await hot.close()
    gone = HotStore(f"redis://127.0.0.1:{unused_port()}/0", prefix=key_prefix)
    try:
        with pytest.raises(HotStoreUnavailable):
            await gone.get_tip(new_hash())
    finally:
        await gone.close()
