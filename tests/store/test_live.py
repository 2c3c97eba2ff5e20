"""Live payment views in Redis and their change notices, on real PostgreSQL and Redis."""

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

import pytest

from tests.store.conftest import hybrid_settings, insert, new_hash
from tests.support.pg_queries import QueryCounter
from tests.support.tcp_proxy import behind, proxy_for
from tipsplit.domain.states import LegStatus, PaymentStatus
from tipsplit.http.views import public_status_view
from tipsplit.keyring import KeyRing
from tipsplit.observability import CACHE_LOOKUPS
from tipsplit.store import HybridTipStore
from tipsplit.store.live import FINAL_VIEW_TTL_SECONDS, Render

render: Render = partial(public_status_view, max_attempts=4)


async def fresh(store: HybridTipStore, payment_hash: str) -> dict[str, Any]:
    """The view as PostgreSQL has it now, bypassing Redis."""
    payment = await store.pg.payments.get(payment_hash)
    assert payment is not None
    return render(payment, await store.pg.events.of_payment(payment_hash))


def hits() -> float:
    return CACHE_LOOKUPS.labels(result="hit")._value.get()


async def test_a_poll_of_an_active_payment_makes_no_postgresql_query(store: HybridTipStore, keyring: KeyRing) -> None:
    ph = await insert(store.pg, keyring)
    hits_before = hits()
    with QueryCounter(store.pg) as queries:
        first = await store.live.get(ph, render)
        assert await queries.count() > 0, "the first read is a miss: PostgreSQL answers"
        queries.reset()
        for _ in range(20):
            assert await store.live.get(ph, render) == first
        assert await queries.count() == 0, queries.statements
    assert first == await fresh(store, ph)
    assert first["status"] == "pending" and [e["type"] for e in first["events"]] == ["created"]
    assert hits() - hits_before == 20


async def test_an_unknown_payment_is_none_and_not_cached(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    ph = new_hash()
    assert await store.live.get(ph, render) is None
    assert not await raw.exists(f"{key_prefix}live:view:{{{ph}}}")


async def test_the_view_follows_every_transition(store: HybridTipStore, keyring: KeyRing) -> None:
    ph = await insert(store.pg, keyring)
    pg = store.pg

    async def check() -> dict[str, Any]:
        # Warm, and the warm view is the committed truth; then a second read is a hit.
        seen = await store.live.get(ph, render)
        assert seen == await fresh(store, ph)
        with QueryCounter(pg) as queries:
            assert await store.live.get(ph, render) == seen
            assert await queries.count() == 0
        assert seen is not None
        return seen

    await check()
    assert await pg.claims.claim(ph, "w", 60) is not None
    assert (await check())["status"] == "processing"
    assert await pg.claims.release(ph, "w", PaymentStatus.PENDING, "not_paid")
    assert (await check())["status"] == "pending"
    assert await pg.claims.claim(ph, "w", 60) is not None
    await check()
    assert await pg.claims.mark_paid(ph, "w")
    assert (await check())["paidAt"] is not None
    assert await pg.legs.wait(ph, "base", datetime.now(UTC) + timedelta(seconds=30), "destination invoice budget")
    assert (await check())["legs"][0]["waitingFor"] == "destination invoice budget"
    for leg in await pg.legs.of_payment(ph):
        await pg.legs.set_invoice(ph, leg.leg, new_hash(), "lnbc1")
        assert next(v for v in (await check())["legs"] if v["leg"] == leg.leg)["status"] == "invoiced"
        assert await pg.legs.transition(ph, leg.leg, {LegStatus.INVOICED}, LegStatus.PAYING)
        await check()
        await pg.events.add(ph, "leg_payment_pending", {"leg": leg.leg})
        assert (await check())["events"][-1]["type"] == "leg_payment_pending"
        assert await pg.legs.transition(ph, leg.leg, {LegStatus.PAYING}, LegStatus.SUCCEEDED)
        assert next(v for v in (await check())["legs"] if v["leg"] == leg.leg)["status"] == "succeeded"
    assert await pg.outcomes.complete(ph, "w", {"success": True}) is not None
    assert (await check())["status"] == "completed"


async def test_a_final_view_expires_soon(store: HybridTipStore, keyring: KeyRing, raw: aioredis.Redis, key_prefix: str) -> None:
    ph = await insert(store.pg, keyring)
    await store.live.get(ph, render)
    active_ttl = await raw.pttl(f"{key_prefix}live:view:{{{ph}}}")
    assert 3_000_000 < active_ttl <= 3_600_000, "an active view lives as long as its invoice (1 h here)"
    assert await store.pg.outcomes.fail_unclaimed(ph, "w", "gave up") is not None
    assert (await store.live.get(ph, render))["status"] == "failed"
    assert 0 < await raw.pttl(f"{key_prefix}live:view:{{{ph}}}") <= FINAL_VIEW_TTL_SECONDS * 1000


async def test_a_read_older_than_a_transition_is_never_cached(store: HybridTipStore, keyring: KeyRing) -> None:
    """A miss reads the payment, a transition commits before the read is cached: the older view is refused."""
    ph = await insert(store.pg, keyring)
    real_events = store.pg.events.of_payment
    raced = False

    async def events_after_a_transition(payment_hash: str) -> Any:
        nonlocal raced
        if not raced:
            raced = True
            assert await store.pg.claims.claim(payment_hash, "w", 60) is not None  # commits and invalidates
        return await real_events(payment_hash)

    store.pg.events.of_payment = events_after_a_transition  # type: ignore[method-assign]
    stale = await store.live.get(ph, render)
    store.pg.events.of_payment = real_events  # type: ignore[method-assign]
    assert stale is not None and stale["status"] == "pending", "this read began before the claim"
    assert (await store.live.get(ph, render))["status"] == "processing"
    assert (await store.live.get(ph, render)) == await fresh(store, ph)


async def test_flushed_redis_falls_back_to_postgresql_and_rewarms(
    store: HybridTipStore, keyring: KeyRing, raw: aioredis.Redis, key_prefix: str
) -> None:
    ph = await insert(store.pg, keyring)
    await store.live.get(ph, render)
    assert await store.pg.claims.claim(ph, "w", 60) is not None
    warm = await store.live.get(ph, render)
    keys = [key async for key in raw.scan_iter(match=f"{key_prefix}*")]
    await raw.delete(*keys)
    with QueryCounter(store.pg) as queries:
        assert await store.live.get(ph, render) == warm
        assert await queries.count() > 0
        queries.reset()
        assert await store.live.get(ph, render) == warm
        assert await queries.count() == 0, "re-warmed"


@pytest.mark.single_redis
async def test_redis_down_reads_postgresql_and_announces_missed_changes_when_back(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing, raw: aioredis.Redis
) -> None:
    proxy = proxy_for(redis_url)
    port = await proxy.start()
    store = HybridTipStore(hybrid_settings(migrated_url, behind(redis_url, port), key_prefix, tmp_path), keyring)
    await store.initialize(migrate=False)
    assert store.hot is not None
    store.hot._retry_after = 0.1
    try:
        ph = await insert(store.pg, keyring)
        assert (await store.live.get(ph, render))["status"] == "pending"
        await proxy.stop()
        assert await store.pg.claims.claim(ph, "w", 60) is not None, "a transition commits while Redis is down"
        assert (await store.live.get(ph, render))["status"] == "processing", "PostgreSQL answers"
        assert await raw.exists(f"{key_prefix}live:view:{{{ph}}}"), "the old view is still in Redis"
        await proxy.start()
        await asyncio.sleep(0.15)
        await store.live.announce_pending()
        assert not await raw.exists(f"{key_prefix}live:view:{{{ph}}}")
        assert (await store.live.get(ph, render))["status"] == "processing"
    finally:
        await store.close()
        await proxy.stop()


@pytest.mark.single_redis
async def test_a_watch_is_woken_by_pub_sub_and_falls_back_to_polling_without_it(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    proxy = proxy_for(redis_url)
    port = await proxy.start()
    store = HybridTipStore(hybrid_settings(migrated_url, behind(redis_url, port), key_prefix, tmp_path), keyring)
    await store.initialize(migrate=False)
    assert store.hot is not None
    store.hot._retry_after = 0.1
    loop = asyncio.get_running_loop()
    try:
        ph = await insert(store.pg, keyring)
        async with store.feed.watch(ph) as watch:
            for _ in range(100):
                if store.feed.live:
                    break
                await asyncio.sleep(0.05)
            assert store.feed.live
            watch.arm()
            started = loop.time()
            waiting = asyncio.create_task(watch.wait(poll_seconds=30, longest=30))
            await asyncio.sleep(0.2)
            assert not waiting.done(), "no change, no wake-up: an idle stream does not poll"
            assert await store.pg.claims.claim(ph, "w", 60) is not None
            await asyncio.wait_for(waiting, 5)
            assert loop.time() - started < 5 and store.feed.notices >= 1

            watch.arm()
            waiting = asyncio.create_task(watch.wait(poll_seconds=0.3, longest=30))
            await proxy.stop()
            await asyncio.wait_for(waiting, 5)
            assert not store.feed.live, "the subscription is lost: streams are woken and poll"
            watch.arm()
            started = loop.time()
            await watch.wait(poll_seconds=0.3, longest=30)
            assert 0.2 < loop.time() - started < 2, "while down, a stream reads every poll interval"

            await proxy.start()
            for _ in range(200):
                if store.feed.live:
                    break
                await asyncio.sleep(0.05)
            assert store.feed.live, "the subscription comes back"
            watch.arm()
            waiting = asyncio.create_task(watch.wait(poll_seconds=30, longest=30))
            await asyncio.sleep(0.1)
            assert await store.pg.claims.release(ph, "w", PaymentStatus.PENDING, "not_paid")
            await asyncio.wait_for(waiting, 5)
        assert store.feed.watching == 0
    finally:
        await store.close()
        await proxy.stop()
