"""The hot store on a Redis Cluster and behind Sentinel, each started here for real, besides the single server.

The whole store and settlement suites also run against a cluster with
TIPSPLIT_TEST_REDIS=cluster (.ci/run does); these tests cover what that run
cannot: cluster and sentinel in the default run, a cluster restarting under a
live feed, and a Sentinel failover.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from tests.store.conftest import hybrid_settings, insert, new_hash
from tests.support.redis_servers import LocalCluster, LocalSentinel
from tipsplit.domain.states import PaymentStatus
from tipsplit.keyring import KeyRing
from tipsplit.observability import settings_secrets
from tipsplit.settings import Settings
from tipsplit.store import HybridTipStore
from tipsplit.store.autopipeline import AutoPipeline
from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.hot import HotStore
from tipsplit.store.redis_client import RedisTarget, connect_redis, parse_target

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed to start a cluster or a sentinel",
)


def test_the_url_names_the_deployment() -> None:
    assert parse_target("redis://:pw@10.0.0.1:6380/2").kind == "single"
    assert parse_target("rediss+cluster://u:p%40ss@a:7000,b:7001,[::1]/") == RedisTarget(
        "cluster", [("a", 7000), ("b", 7001), ("::1", 6379)], True, "u", "p@ss", 0, None
    )
    assert parse_target("redis+sentinel://s1,s2:26380/main/3") == RedisTarget(
        "sentinel", [("s1", 26379), ("s2", 26380)], False, None, None, 3, "main"
    )
    with pytest.raises(ValueError, match="names the master"):
        parse_target("redis+sentinel://s1:26379")


def test_sentinel_settings_stand_for_a_sentinel_url() -> None:
    settings = Settings(redis_sentinels="s1:26379, s2:26379", redis_sentinel_master="main")
    assert settings.redis_url == "redis+sentinel://s1:26379,s2:26379/main"
    with pytest.raises(ValueError, match="not both"):
        Settings(redis_url="redis://x", redis_sentinels="s1:26379", redis_sentinel_master="main")
    with pytest.raises(ValueError, match="together"):
        Settings(redis_sentinels="s1:26379")
    guarded = Settings(redis_sentinels="s1", redis_sentinel_master="m", redis_sentinel_password="sentinel-secret-1")
    assert "sentinel-secret-1" in settings_secrets(guarded), "the sentinels' password is masked in logs too"


async def test_the_keys_one_script_or_command_touches_share_a_slot() -> None:
    hot = HotStore("redis://127.0.0.1:1/0", prefix="pre:")
    try:
        payment_hash = new_hash()
        slots = {key_slot(key.encode()) for key in [
            hot.tip_key(payment_hash), hot.lock_key(payment_hash), *hot._live_keys(payment_hash)
        ]}
        assert len(slots) == 1, "a payment's lock, cache and live view are used together by scripts"
        assert len({key_slot(key.encode()) for key in hot._budget_keys("own:acct")}) == 1
        spread = {key_slot(hot.tip_key(new_hash()).encode()) for _ in range(50)}
        assert len(spread) > 40, "payments are spread over the slots, not piled on one"
    finally:
        await hot.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A cluster shared by the tests that leave it running."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server and redis-cli are needed to start a cluster")
    local = LocalCluster().start_cluster()
    yield local
    local.stop()


@pytest.fixture()
async def cluster_hot(cluster: LocalCluster, key_prefix: str) -> AsyncIterator[HotStore]:
    hot = HotStore(cluster.url, prefix=key_prefix)
    yield hot
    await hot.close()


async def test_one_pipeline_on_a_cluster_spans_slots_and_answers_each_caller(
    cluster: LocalCluster, key_prefix: str
) -> None:
    client = connect_redis(cluster.url, decode_responses=True)
    assert isinstance(client, RedisCluster)
    try:
        pipeline = AutoPipeline(client)
        keys = [f"{key_prefix}ap:{i}" for i in range(200)]
        await asyncio.gather(*(pipeline.execute("SET", key, f"value-{i}") for i, key in enumerate(keys)))
        await pipeline.execute("LPUSH", f"{key_prefix}list", "x")
        replies = await asyncio.gather(
            *(pipeline.execute("GET", key) for key in keys),
            pipeline.execute("INCR", f"{key_prefix}list"),
            return_exceptions=True,
        )
        assert replies[:200] == [f"value-{i}" for i in range(200)]
        assert isinstance(replies[200], redis.exceptions.ResponseError), "the wrong-type error reaches its caller only"
        nodes = {client.get_node_from_key(key).name for key in keys}
        assert len(nodes) == len(cluster.ports), "the batch went to every node"
        await client.delete(*keys, f"{key_prefix}list")
    finally:
        await client.aclose()


async def test_payments_spread_over_the_nodes_keep_their_locks_views_and_budgets(cluster_hot: HotStore) -> None:
    hot = cluster_hot
    hashes = [new_hash() for _ in range(30)]
    tokens = []
    for payment_hash in hashes:
        assert await hot.store_tip(payment_hash, {"h": payment_hash}, None)
        token = await hot.acquire_lock(payment_hash)
        assert token is not None and await hot.acquire_lock(payment_hash) is None
        assert await hot.extend_lock(payment_hash, token)
        tokens.append(token)
        assert await hot.put_live_view(payment_hash, "0", '{"status":"pending"}', 60_000)
    await hot.set_daily_stats(date.today(), {"n": 1})
    await hot.set_recipient_stats("alice", {"n": 1})

    await hot.invalidate_live_views(hashes)
    for payment_hash in hashes:
        assert await hot.get_live_view(payment_hash) == (None, "1")
        assert not await hot.put_live_view(payment_hash, "0", "{}", 60_000), "an older read is not cached again"

    await asyncio.gather(*(
        hot.forget_payment(payment_hash, date.today(), ["alice"], lock_token=token)
        for payment_hash, token in zip(hashes, tokens, strict=True)
    ))
    for payment_hash in hashes:
        assert await hot.get_tip(payment_hash) is None
        assert await hot.acquire_lock(payment_hash) is not None, "the lock went with the payment"
    assert await hot.get_daily_stats(date.today()) is None and await hot.get_recipient_stats("alice") is None

    results = [await hot.take_budget("own:acct", 3, 60) for _ in range(4)]
    assert [result.allowed for result in results] == [True, True, True, False]
    await hot.block_budget("for:bob", 30)
    assert not (await hot.take_budget("for:bob", 3, 60)).allowed
    assert (await hot.budget_state("own:acct", 60))[0] == 3


async def _eventually(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@needs_redis_server
async def test_a_live_feed_on_a_cluster_polls_while_the_cluster_restarts_and_subscribes_again(
    migrated_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    local = await asyncio.to_thread(lambda: LocalCluster().start_cluster())
    store = HybridTipStore(hybrid_settings(migrated_url, local.url, key_prefix, tmp_path), keyring)
    try:
        await store.initialize(migrate=False)
        assert store.hot is not None
        store.hot._retry_after = 0.1
        ph = await insert(store.pg, keyring)
        async with store.feed.watch(ph) as watch:
            await _eventually(lambda: store.feed.live)
            watch.arm()
            waiting = asyncio.create_task(watch.wait(poll_seconds=30, longest=30))
            assert await store.pg.claims.claim(ph, "w", 60) is not None
            await asyncio.wait_for(waiting, 5)
            assert store.feed.notices >= 1, "woken by the cluster's pub/sub"

            for port in local.ports:
                local.kill(port)
            await _eventually(lambda: not store.feed.live)
            with pytest.raises(HotStoreUnavailable):
                await store.hot.get_tip(ph)
            watch.arm()
            started = asyncio.get_running_loop().time()
            await watch.wait(poll_seconds=0.3, longest=30)
            assert asyncio.get_running_loop().time() - started < 2, "while the cluster is down, streams poll"

            for port in local.ports:
                await asyncio.to_thread(local.restart, port)
            await asyncio.to_thread(local.wait_until_ok)
            await _eventually(lambda: store.feed.live)
            notices = store.feed.notices
            watch.arm()
            waiting = asyncio.create_task(watch.wait(poll_seconds=30, longest=30))
            await asyncio.sleep(0.1)
            assert await store.pg.claims.release(ph, "w", PaymentStatus.PENDING, "not_paid")
            await asyncio.wait_for(waiting, 10)
            assert store.feed.notices > notices, "the notice came by pub/sub again"
    finally:
        await store.close()
        local.stop()


@needs_redis_server
async def test_on_a_cluster_with_replicas_the_hot_store_follows_a_master_failover(key_prefix: str) -> None:
    local = await asyncio.to_thread(lambda: LocalCluster(replicas=1).start_cluster())
    hot = HotStore(local.url, prefix=key_prefix, retry_after_seconds=0.1)
    try:
        hashes = [new_hash() for _ in range(30)]
        for payment_hash in hashes:
            assert await hot.store_tip(payment_hash, {"h": payment_hash}, None)
        await asyncio.to_thread(local.replicate)
        victim = local.masters()[0]
        await asyncio.to_thread(local.kill, victim)

        async def write_all() -> None:
            for payment_hash in hashes:
                await hot.extend_lock(payment_hash, "nobody's token")

        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                await write_all()
                break
            except HotStoreUnavailable:
                assert asyncio.get_running_loop().time() < deadline, "the cluster did not fail over in time"
                await asyncio.sleep(0.2)
        assert victim not in local.masters() and len(local.masters()) == 3, "a replica took the dead master's slots"
        assert all([await hot.acquire_lock(payment_hash) is not None for payment_hash in hashes])
        found = [await hot.get_tip(payment_hash) for payment_hash in hashes]
        assert all(tip == {"h": payment_hash} for tip, payment_hash in zip(found, hashes, strict=True)), (
            "the promoted replica had the cached payments"
        )
    finally:
        await hot.close()
        await asyncio.to_thread(local.stop)


@needs_redis_server
async def test_through_sentinel_the_hot_store_follows_a_failover(key_prefix: str) -> None:
    local = await asyncio.to_thread(lambda: LocalSentinel().start_sentinel())
    settings = Settings(
        redis_sentinels=f"127.0.0.1:{local.sentinel_port}", redis_sentinel_master="tipsplit",
        redis_key_prefix=key_prefix,
    )
    hot = HotStore.from_settings(settings, retry_after_seconds=0.1)
    try:
        before = new_hash()
        assert await hot.store_tip(before, {"a": 1}, None)
        async with hot.subscribe_changes() as pubsub:
            await hot.invalidate_live_views([before])
            messages = [await pubsub.get_message(ignore_subscribe_messages=True, timeout=5) for _ in range(2)]
            assert [message["data"] for message in messages if message] == [before]

        await asyncio.to_thread(local.failover)
        assert local.master()[1] == local.replica_port

        after = new_hash()
        for _ in range(100):
            try:
                await hot.store_tip(after, {"b": 2}, None)
                break
            except HotStoreUnavailable:
                await asyncio.sleep(0.1)
        assert await hot.get_tip(after) == {"b": 2}, "writes reach the promoted replica"
        assert await hot.get_tip(before) == {"a": 1}, "what the old master had was replicated"
        assert await hot.acquire_lock(after) is not None
    finally:
        await hot.close()
        await asyncio.to_thread(local.stop)
