"""HotStore against a real Redis: TTLs, token locks, sliding-window rate limits, fast failure when Redis is gone."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from tests.store.conftest import new_hash
from tests.support.tcp_proxy import TcpProxy, unused_port
from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.hot import HotStore


@pytest.fixture()
async def hot(redis_url: str, key_prefix: str) -> AsyncIterator[HotStore]:
    store = HotStore(redis_url, prefix=key_prefix)
    yield store
    await store.close()


async def test_tip_ttl_follows_invoice_expiry(hot: HotStore, raw: aioredis.Redis) -> None:
    payment_hash = new_hash()
    assert await hot.store_tip(payment_hash, {"baseAmount": 1}, datetime.now(UTC) + timedelta(minutes=10))
    assert 590 <= await raw.ttl(hot.tip_key(payment_hash)) <= 600
    assert await hot.get_tip(payment_hash) == {"baseAmount": 1}
    other = new_hash()
    await hot.store_tip(other, {"baseAmount": 2}, None)
    assert 86_390 <= await raw.ttl(hot.tip_key(other)) <= 86_400
    assert not await hot.store_tip(new_hash(), {"baseAmount": 3}, datetime.now(UTC) - timedelta(seconds=1))
    await hot.delete_tip(payment_hash)
    assert await hot.get_tip(payment_hash) is None


async def test_lock_is_released_only_by_its_holder(hot: HotStore, raw: aioredis.Redis) -> None:
    payment_hash = new_hash()
    token = await hot.acquire_lock(payment_hash)
    assert token is not None
    assert 299 <= await raw.ttl(hot.lock_key(payment_hash)) <= 300
    assert await hot.acquire_lock(payment_hash) is None
    assert not await hot.release_lock(payment_hash, "not-the-token")
    assert not await hot.extend_lock(payment_hash, "not-the-token", 600)
    assert await hot.extend_lock(payment_hash, token, 600)
    assert await raw.ttl(hot.lock_key(payment_hash)) > 300
    assert await hot.release_lock(payment_hash, token)
    assert await hot.acquire_lock(payment_hash) is not None


async def test_concurrent_lock_takers_one_wins(hot: HotStore) -> None:
    payment_hash = new_hash()
    tokens = await asyncio.gather(*(hot.acquire_lock(payment_hash) for _ in range(30)))
    assert sum(token is not None for token in tokens) == 1


async def test_rate_limit_allows_n_then_refuses_with_retry_after(hot: HotStore, raw: aioredis.Redis) -> None:
    results = [await hot.hit_rate_limit("user", "wallet-1", 3, 3600) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results[:3]] == [2, 1, 0]
    assert 3590 <= results[3].retry_after <= 3600
    assert 3_599_000 <= await raw.pttl(hot.key("ratelimit", "user", "wallet-1", "invoice")) <= 3_600_000
    assert (await hot.hit_rate_limit("ip", "10.0.0.1", 3, 3600)).allowed


async def test_rate_limit_window_slides(hot: HotStore) -> None:
    assert (await hot.hit_rate_limit("ip", "10.0.0.2", 1, 1)).allowed
    refused = await hot.hit_rate_limit("ip", "10.0.0.2", 1, 1)
    assert not refused.allowed and refused.retry_after == 1
    await asyncio.sleep(1.05)
    assert (await hot.hit_rate_limit("ip", "10.0.0.2", 1, 1)).allowed


async def test_stats_cache_has_one_hour_ttl(hot: HotStore, raw: aioredis.Redis) -> None:
    today = date.today()
    await hot.set_daily_stats(today, {"completed_count": 3})
    await hot.set_recipient_stats("alice_tips", {"total": 10})
    assert await hot.get_daily_stats(today) == {"completed_count": 3}
    assert 3590 <= await raw.ttl(hot.key("stats", "daily", today.isoformat())) <= 3600
    assert 3590 <= await raw.ttl(hot.key("stats", "recipient", "alice_tips")) <= 3600
    await hot.forget_payment(new_hash(), today, ["alice_tips"])
    assert await hot.get_daily_stats(today) is None and await hot.get_recipient_stats("alice_tips") is None


async def test_unreachable_redis_fails_fast(key_prefix: str) -> None:
    hot = HotStore(f"redis://127.0.0.1:{unused_port()}/0", prefix=key_prefix)
    try:
        started = time.monotonic()
        with pytest.raises(HotStoreUnavailable):
            await hot.get_tip(new_hash())
        with pytest.raises(HotStoreUnavailable):
            await hot.acquire_lock(new_hash())
        assert time.monotonic() - started < 1.0
    finally:
        await hot.close()


async def test_blackholed_redis_times_out_instead_of_hanging(key_prefix: str) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hot = HotStore(f"redis://127.0.0.1:{port}/0", prefix=key_prefix, socket_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(HotStoreUnavailable):
            await hot.get_tip(new_hash())
        assert time.monotonic() - started < 1.0
    finally:
        await hot.close()
        server.close()


@pytest.mark.single_redis
async def test_client_is_reused_when_redis_comes_back(redis_url: str, key_prefix: str) -> None:
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    port = await proxy.start()
    hot = HotStore(f"redis://127.0.0.1:{port}/0", prefix=key_prefix, retry_after_seconds=0.1)
    try:
        payment_hash = new_hash()
        await hot.store_tip(payment_hash, {"a": 1}, None)
        await proxy.stop()
        with pytest.raises(HotStoreUnavailable):
            await hot.get_tip(payment_hash)
        assert not hot.available
        with pytest.raises(HotStoreUnavailable, match="waiting"):
            await hot.get_tip(payment_hash)
        await proxy.start()
        await asyncio.sleep(0.15)
        assert await hot.get_tip(payment_hash) == {"a": 1}
    finally:
        await hot.close()
        await proxy.stop()


async def test_a_connection_closed_mid_command_counts_as_redis_down(
    hot: HotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's cluster client can raise AttributeError when another task closed the connection mid-write."""

    def closed_writer(*args: object) -> object:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    monkeypatch.setattr(hot._pipeline, "execute", closed_writer)
    with pytest.raises(HotStoreUnavailable):
        await hot.hit_rate_limit(scope="ip", identity="10.1.2.3", limit=5, window_seconds=60)
    assert not hot.available


async def test_other_attribute_errors_are_not_hidden(hot: HotStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object) -> object:
        raise AttributeError("'Foo' object has no attribute 'bar'")

    monkeypatch.setattr(hot._pipeline, "execute", bug)
    with pytest.raises(AttributeError):
        await hot.hit_rate_limit(scope="ip", identity="10.1.2.3", limit=5, window_seconds=60)
