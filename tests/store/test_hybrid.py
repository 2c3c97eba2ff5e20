"""HybridTipStore end to end on real PostgreSQL and Redis, including either of them going away."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from tests.store.conftest import TEST_API_KEY, hybrid_settings, new_hash, tip_dict
from tests.support.tcp_proxy import behind, proxy_for, unused_port
from tipsplit.domain.models import TipData
from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.store import (
    HybridTipStore,
    InvalidPaymentHash,
    InvalidTipData,
    PaymentConflict,
    PaymentStateError,
    StorageUnavailable,
)
from tipsplit.store.postgres import PostgresStore


async def settle_legs(pg: PostgresStore, payment_hash: str, owner: str) -> None:
    for leg in await pg.legs.of_payment(payment_hash):
        if leg.status == LegStatus.SKIPPED:
            continue
        await pg.legs.set_invoice(payment_hash, leg.leg, new_hash(), "lnbc1")
        await pg.legs.transition(payment_hash, leg.leg, {LegStatus.INVOICED}, LegStatus.SUCCEEDED)


async def delete_prefix(raw: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
    if keys:
        await raw.delete(*keys)


async def test_dict_round_trip_in_the_seed_shape(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    payment_hash = new_hash()
    await store.store_tip_data(payment_hash, tip_dict(totalAmount=11_500))
    got = await store.get_tip_data(payment_hash)
    assert got is not None
    assert got["userApiKey"] == TEST_API_KEY
    assert (got["baseAmount"], got["tipAmount"], got["totalAmount"], got["tipPercent"]) == (10_000, 1_500, 11_500, 15)
    assert got["tipRecipient"] == "alice_tips"
    assert got["tipRecipients"] == [{"username": "alice_tips", "share": 60}, {"username": "bob_tips", "share": 40}]
    assert (got["displayCurrency"], got["baseAmountDisplay"], got["tipAmountDisplay"]) == ("USD", 10, 1.5)
    assert got["status"] == "pending" and got["expiresAt"] - got["createdAt"] == 24 * 3600 * 1000
    cached = json.loads(await raw.get(f"{key_prefix}tip:{{{payment_hash}}}"))
    assert cached["userApiKey"].startswith("enc:v1:")
    assert 86_390 <= await raw.ttl(f"{key_prefix}tip:{{{payment_hash}}}") <= 86_400


async def test_typed_round_trip_and_tip_ttl_follows_expiry(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    payment_hash = new_hash()
    tip = TipData.model_validate(tip_dict(tipRecipients=[], tipRecipient="carol_tips", tipAmount=7))
    await store.store_tip_data(payment_hash, tip, expires_at=datetime.now(UTC) + timedelta(minutes=15))
    got = await store.get_tip_data(payment_hash)
    assert got is not None and got["tipRecipients"] == [{"username": "carol_tips", "share": 100}]
    assert 890 <= await raw.ttl(f"{key_prefix}tip:{{{payment_hash}}}") <= 900


async def test_redis_flushed_falls_back_to_postgres_and_rewarms(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    payment_hash = new_hash()
    await store.store_tip_data(payment_hash, tip_dict())
    from_redis = await store.get_tip_data(payment_hash)
    await delete_prefix(raw, key_prefix)
    from_postgres = await store.get_tip_data(payment_hash)
    assert from_postgres == from_redis
    assert await raw.exists(f"{key_prefix}tip:{{{payment_hash}}}")
    assert await store.get_tip_data(new_hash()) is None


@pytest.mark.single_redis
async def test_redis_down_then_back(migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing, raw: aioredis.Redis) -> None:
    proxy = proxy_for(redis_url)
    port = await proxy.start()
    settings = hybrid_settings(migrated_url, behind(redis_url, port), key_prefix, tmp_path)
    store = HybridTipStore(settings, keyring)
    await store.initialize(migrate=False)
    assert store.hot is not None
    store.hot._retry_after = 0.1
    try:
        await proxy.stop()
        first = new_hash()
        await store.store_tip_data(first, tip_dict())
        assert (await store.get_tip_data(first))["userApiKey"] == TEST_API_KEY
        assert await store.acquire_lock(first) is None
        claimed = await store.pg.claims.claim(first, "worker", 60)
        assert claimed is not None
        await settle_legs(store.pg, first, "worker")
        await store.remove_tip_data(first, {"success": True}, owner="worker")
        assert (await store.pg.payments.get(first)).status == PaymentStatus.COMPLETED
        assert await store.get_tip_data(first) is None
        await proxy.start()
        await asyncio.sleep(0.15)
        second = new_hash()
        await store.store_tip_data(second, tip_dict())
        assert await raw.exists(f"{key_prefix}tip:{{{second}}}")
        assert await store.acquire_lock(second) is not None
    finally:
        await store.close()
        await proxy.stop()


async def test_postgres_down_with_fallback_journals_then_replays(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing, raw: aioredis.Redis
) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    await proxy.stop()
    settings = hybrid_settings(behind(migrated_url, port), redis_url, key_prefix, tmp_path, fallback_to_file_storage=True)
    store = HybridTipStore(settings, keyring, replay_interval=0.2)
    await store.initialize(migrate=False)
    checker = await PostgresStore.connect(migrated_url, min_size=1, max_size=2)
    try:
        hashes = [new_hash() for _ in range(5)]
        for payment_hash in hashes:
            await store.store_tip_data(payment_hash, tip_dict())
        assert store.journal is not None and len(store.journal) == 5
        assert (await store.get_tip_data(hashes[0]))["userApiKey"] == TEST_API_KEY
        await delete_prefix(raw, key_prefix)
        assert (await store.get_tip_data(hashes[1]))["userApiKey"] == TEST_API_KEY
        with pytest.raises(StorageUnavailable):
            await store.replay_journal()
        assert len(store.journal) == 5

        await proxy.start()
        for _ in range(50):
            if len(store.journal) == 0:
                break
            await asyncio.sleep(0.1)
        assert len(store.journal) == 0
        assert await store.replay_journal() == 0
        await store.store_tip_data(hashes[0], tip_dict())
        for payment_hash in hashes:
            payment = await checker.payments.get(payment_hash)
            assert payment is not None and payment.status == PaymentStatus.PENDING and len(payment.legs) == 3
            assert [e.event_type for e in await checker.events.of_payment(payment_hash)] == ["created"]
        assert (await store.get_tip_data(hashes[2]))["userApiKey"] == TEST_API_KEY
    finally:
        await checker.close()
        await store.close()
        await proxy.stop()


async def test_a_journaled_sale_keeps_its_destination_wallets_and_currencies(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    await proxy.stop()
    settings = hybrid_settings(behind(migrated_url, port), redis_url, key_prefix, tmp_path, fallback_to_file_storage=True)
    store = HybridTipStore(settings, keyring, replay_interval=3600)
    await store.initialize(migrate=False)
    checker = await PostgresStore.connect(migrated_url, min_size=1, max_size=2)
    try:
        payment_hash = new_hash()
        await store.store_tip_data(
            payment_hash, tip_dict(userWalletId="merchant-usd"),
            recipient_wallets={"alice_tips": "alice-usd", "bob_tips": "bob-btc"},
            wallet_currencies={"merchant-usd": WalletCurrency.USD, "alice-usd": WalletCurrency.USD,
                               "bob-btc": WalletCurrency.BTC},
        )
        assert store.journal is not None and len(store.journal) == 1
        await proxy.start()
        assert await store.replay_journal() == 1
        legs = {leg.leg: (leg.destination_wallet_id, leg.destination_currency) for leg in await checker.legs.of_payment(payment_hash)}
        assert legs == {
            "base": ("merchant-usd", WalletCurrency.USD),
            "tip:1": ("alice-usd", WalletCurrency.USD),
            "tip:2": ("bob-btc", WalletCurrency.BTC),
        }
    finally:
        await checker.close()
        await store.close()
        await proxy.stop()


async def test_postgres_down_without_fallback_is_a_clear_error(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing, raw: aioredis.Redis
) -> None:
    settings = hybrid_settings(f"postgresql://postgres@127.0.0.1:{unused_port()}/nowhere", redis_url, key_prefix, tmp_path)
    store = HybridTipStore(settings, keyring)
    with pytest.raises(StorageUnavailable):
        await store.initialize()
    payment_hash = new_hash()
    with pytest.raises(StorageUnavailable, match="FALLBACK_TO_FILE_STORAGE is off"):
        await store.store_tip_data(payment_hash, tip_dict())
    await store.close()
    assert not await raw.exists(f"{key_prefix}tip:{{{payment_hash}}}")
    assert not (tmp_path / "journal.jsonl").exists()
    checker = await PostgresStore.connect(migrated_url, min_size=1, max_size=1)
    assert await checker.payments.get(payment_hash) is None
    await checker.close()


async def test_two_hundred_concurrent_stores_and_removes(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    hashes = [new_hash() for _ in range(200)]
    await asyncio.gather(*(store.store_tip_data(h, tip_dict()) for h in hashes + hashes[:50]))
    await asyncio.gather(*(store.remove_tip_data(h, {"success": False, "error": "test"}) for h in hashes))
    await asyncio.gather(*(store.remove_tip_data(h, {"success": False, "error": "again"}) for h in hashes[:20]))
    with psycopg.connect(store.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM payment_splits WHERE payment_hash = ANY(%s) GROUP BY status", (hashes,)
        ).fetchall()
        created = conn.execute(
            "SELECT count(*) FROM payment_events WHERE event_type = 'created' AND payment_hash = ANY(%s)", (hashes,)
        ).fetchone()
        legs = conn.execute("SELECT count(*) FROM payment_legs WHERE payment_hash = ANY(%s)", (hashes,)).fetchone()
    assert rows == [("failed", 200)]
    assert created == (200,) and legs == (600,)
    assert not [key async for key in raw.scan_iter(match=f"{key_prefix}tip:*")]


async def test_remove_completes_only_settled_payments(store: HybridTipStore) -> None:
    payment_hash = new_hash()
    await store.store_tip_data(payment_hash, tip_dict())
    with pytest.raises(PaymentStateError, match="not settled"):
        await store.remove_tip_data(payment_hash, {"success": True})
    assert (await store.pg.payments.get(payment_hash)).status == PaymentStatus.PENDING
    await store.pg.claims.claim(payment_hash, "worker", 60)
    with pytest.raises(PaymentStateError, match="claimed by worker"):
        await store.remove_tip_data(payment_hash, {"success": True})
    await settle_legs(store.pg, payment_hash, "worker")
    await store.remove_tip_data(payment_hash, {"success": True, "owner": "worker"})
    await store.remove_tip_data(payment_hash, {"success": True, "owner": "worker"})
    payment = await store.pg.payments.get(payment_hash)
    assert payment.status == PaymentStatus.COMPLETED and payment.user_payment_hash is not None


async def test_remove_without_owner_fails_in_one_step_with_one_event(store: HybridTipStore) -> None:
    """An unheld payment is failed with one `failed` event naming where it came from, retry scheduled as for a claim."""
    payment_hash = new_hash()
    await store.store_tip_data(payment_hash, tip_dict())
    await store.remove_tip_data(payment_hash, {"success": False, "error": "given up"})
    payment = await store.pg.payments.get(payment_hash)
    assert payment.status == PaymentStatus.FAILED and payment.error_message == "given up"
    assert payment.settle_attempts == 1 and payment.claim_owner is None and payment.processed_at is not None
    delay = (payment.next_attempt_at - datetime.now(UTC)).total_seconds()
    assert 0 < delay <= store.settings.leg_retry_base_seconds
    events = await store.pg.events.of_payment(payment_hash)
    assert [e.event_type for e in events] == ["created", "failed"]
    data = events[-1].event_data
    assert data["previousStatus"] == "pending" and data["previousOwner"] is None and data["attempts"] == 1
    assert data["error"] == "given up" and data["owner"].startswith("remove-")
    await store.remove_tip_data(payment_hash, {"success": False, "error": "again"})
    again = await store.pg.payments.get(payment_hash)
    assert again.settle_attempts == 2 and (await store.pg.events.of_payment(payment_hash))[-1].event_data["previousStatus"] == "failed"


async def test_remove_without_owner_respects_a_live_claim_and_takes_a_lapsed_one(store: HybridTipStore) -> None:
    live, lapsed = new_hash(), new_hash()
    for payment_hash in (live, lapsed):
        await store.store_tip_data(payment_hash, tip_dict())
    await store.pg.claims.claim(live, "worker", 60)
    with pytest.raises(PaymentStateError, match="claimed by worker"):
        await store.remove_tip_data(live, {"success": False, "error": "x"})
    assert (await store.pg.payments.get(live)).status == PaymentStatus.PROCESSING
    await store.pg.claims.claim(lapsed, "crashed-worker", 0.001)
    await asyncio.sleep(0.05)
    await store.remove_tip_data(lapsed, {"success": False, "error": "x"})
    payment = await store.pg.payments.get(lapsed)
    assert payment.status == PaymentStatus.FAILED and payment.settle_attempts == 2
    assert (await store.pg.events.of_payment(lapsed))[-1].event_data["previousOwner"] == "crashed-worker"
    with pytest.raises(PaymentStateError, match="not stored"):
        await store.remove_tip_data(new_hash(), {"success": False, "error": "x"})


@pytest.mark.parametrize("success", [False, True])
async def test_remove_releases_only_the_named_lock_in_the_same_round_trip(
    store: HybridTipStore, raw: aioredis.Redis, key_prefix: str, success: bool
) -> None:
    mine, theirs = new_hash(), new_hash()
    for payment_hash in (mine, theirs):
        await store.store_tip_data(payment_hash, tip_dict())
    token = await store.acquire_lock(mine)
    other = await store.acquire_lock(theirs)
    assert token is not None and other is not None
    for payment_hash, lock_token in ((mine, token), (theirs, "not-the-holder")):
        owner = None
        if success:
            owner = "worker"
            await store.pg.claims.claim(payment_hash, owner, 60)
            await settle_legs(store.pg, payment_hash, owner)
        await store.remove_tip_data(payment_hash, {"success": success, "error": "x"}, owner=owner, lock_token=lock_token)
    assert not await raw.exists(f"{key_prefix}lock:payment:{{{mine}}}")
    assert await raw.get(f"{key_prefix}lock:payment:{{{theirs}}}") == other
    assert not await raw.exists(f"{key_prefix}tip:{{{mine}}}", f"{key_prefix}tip:{{{theirs}}}")


async def test_stats_are_cached_for_an_hour_and_invalidated(store: HybridTipStore, raw: aioredis.Redis, key_prefix: str) -> None:
    stats = await store.get_stats()
    assert set(stats["last24Hours"]) >= {"pending_count", "completed_count", "total_tips_processed", "average_tip_amount"}
    daily = [key async for key in raw.scan_iter(match=f"{key_prefix}stats:daily:*")]
    assert len(daily) == 1 and 3590 <= await raw.ttl(daily[0]) <= 3600
    assert await store.get_stats() == stats
    payment_hash = new_hash()
    await store.store_tip_data(payment_hash, tip_dict())
    await store.remove_tip_data(payment_hash, {"success": False, "error": "x"})
    assert not await raw.exists(daily[0])
    assert (await store.get_stats())["last24Hours"]["failed_count"] >= 1


async def test_archiving_drops_the_recipients_cached_stats(store: HybridTipStore) -> None:
    """Failed, completed and repeated archives each drop the stats cached for the payment's tip recipients."""
    recipients = ("alice_tips", "bob_tips")

    async def cache_recipient_stats() -> None:
        for name in recipients:
            await store.hot.set_recipient_stats(name, {"cached": True})

    failed, completed = new_hash(), new_hash()
    for payment_hash in (failed, completed):
        await store.store_tip_data(payment_hash, tip_dict())
    await cache_recipient_stats()
    await store.remove_tip_data(failed, {"success": False, "error": "x"})
    assert [await store.hot.get_recipient_stats(name) for name in recipients] == [None, None]
    await cache_recipient_stats()
    await store.remove_tip_data(failed, {"success": False, "error": "again"})
    assert [await store.hot.get_recipient_stats(name) for name in recipients] == [None, None]
    await store.pg.claims.claim(completed, "worker", 60)
    await settle_legs(store.pg, completed, "worker")
    await cache_recipient_stats()
    await store.remove_tip_data(completed, {"success": True, "owner": "worker"})
    assert [await store.hot.get_recipient_stats(name) for name in recipients] == [None, None]


@pytest.mark.parametrize(
    ("payment_hash", "overrides", "message"),
    [
        ("xyz", {}, "64 hexadecimal"),
        (None, {"baseAmount": -5}, "baseAmount"),
        (None, {"tipAmount": -1}, "tipAmount"),
        (None, {"totalAmount": 99}, "not baseAmount \\+ tipAmount"),
        (None, {"amount": 12}, "amount 12"),
        (None, {"tipRecipients": [{"username": "alice_tips", "share": 60}, {"username": "bob_tips", "share": 30}]}, "sum to 100"),
        (None, {"memo": "m" * 700}, "memo"),
        (None, {"userApiKey": ""}, "userApiKey"),
    ],
)
async def test_bad_input_is_rejected_and_nothing_stored(
    store: HybridTipStore, raw: aioredis.Redis, key_prefix: str, payment_hash: str | None, overrides: dict, message: str
) -> None:
    target = payment_hash or new_hash()
    error = InvalidPaymentHash if payment_hash else InvalidTipData
    with pytest.raises(error, match=message):
        await store.store_tip_data(target, tip_dict(**overrides))
    assert not [key async for key in raw.scan_iter(match=f"{key_prefix}*")]
    if payment_hash is None:
        assert await store.pg.payments.get(target) is None


async def test_same_hash_with_other_amounts_is_a_conflict(store: HybridTipStore) -> None:
    payment_hash = new_hash()
    assert await store.store_tip_data(payment_hash, tip_dict()) is True
    assert await store.store_tip_data(payment_hash, tip_dict()) is False
    with pytest.raises(PaymentConflict):
        await store.store_tip_data(payment_hash, tip_dict(baseAmount=1))


async def test_rate_limit_through_the_facade(store: HybridTipStore) -> None:
    limit = store.settings.rate_limit_per_wallet
    results = [await store.check_rate_limit(wallet_id="w-rl", ip="10.9.9.9") for _ in range(3)]
    assert all(r.allowed for r in results) and results[-1].remaining == limit - 3


async def test_plaintext_key_is_found_nowhere(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing, raw: aioredis.Redis,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    settings = hybrid_settings(behind(migrated_url, port), redis_url, key_prefix, tmp_path, fallback_to_file_storage=True)
    store = HybridTipStore(settings, keyring)
    await store.initialize(migrate=False)
    try:
        done, journaled = new_hash(), new_hash()
        await store.store_tip_data(done, tip_dict())
        await store.get_tip_data(done)
        await store.acquire_lock(done)
        await store.remove_tip_data(done, {"success": False, "error": "boom", "userApiKey": TEST_API_KEY})
        kept = new_hash()
        await store.store_tip_data(kept, tip_dict())
        await proxy.stop()
        await store.store_tip_data(journaled, tip_dict())
        journal_text = (tmp_path / "journal.jsonl").read_text()
        assert journaled in journal_text and TEST_API_KEY not in journal_text
        await proxy.start()
        await store.replay_journal()
        store.metrics.record("probe", 1, metadata={"apiKey": TEST_API_KEY})
        await store.metrics.flush()
    finally:
        await store.close()
        await proxy.stop()

    values = [await raw.get(key) async for key in raw.scan_iter(match=f"{key_prefix}*") if await raw.type(key) == "string"]
    assert values and all(TEST_API_KEY not in value for value in values)
    with psycopg.connect(migrated_url) as conn:
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            dump = conn.execute(f'SELECT string_agg(t::text, E"\\n") FROM "{table}" t'.replace('E"\\n"', "E'\\n'")).fetchone()[0] or ""
            assert TEST_API_KEY not in dump, table
        assert conn.execute("SELECT count(*) FROM payment_splits WHERE payment_hash = %s", (journaled,)).fetchone() == (1,)
    captured = capsys.readouterr()
    assert TEST_API_KEY not in captured.out + captured.err + caplog.text


async def test_initialize_migrates_and_works_without_redis(
    fresh_database_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    settings = hybrid_settings(fresh_database_url, None, key_prefix, tmp_path)
    store = HybridTipStore(settings, keyring)
    await store.initialize()
    try:
        assert store.hot is None
        payment_hash = new_hash()
        await store.store_tip_data(payment_hash, tip_dict())
        assert (await store.get_tip_data(payment_hash))["userApiKey"] == TEST_API_KEY
        assert await store.acquire_lock(payment_hash) is None
        assert (await store.check_rate_limit(wallet_id="w")).allowed
        assert (await store.get_stats())["last24Hours"]["pending_count"] == 1
    finally:
        await store.close()


async def test_the_facade_is_an_adapter_over_the_store_it_is_given(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    """The runtime's PostgresStore is the one the seed API writes through, and its transitions refresh the live views."""
    pg = PostgresStore.from_url(migrated_url, min_size=1, max_size=4)
    store = HybridTipStore(hybrid_settings(migrated_url, redis_url, key_prefix, tmp_path), keyring, pg=pg)
    await store.initialize(migrate=False)
    try:
        assert store.pg is pg and pg.change_listener is not None
        payment_hash = new_hash()
        assert await store.store_tip_data(payment_hash, tip_dict())
        assert (await pg.payments.get(payment_hash)).status == PaymentStatus.PENDING
        assert await pg.claims.claim(payment_hash, "worker", 60) is not None
        await settle_legs(pg, payment_hash, "worker")
        await store.remove_tip_data(payment_hash, {"success": True, "owner": "worker"})
        assert (await pg.payments.get(payment_hash)).status == PaymentStatus.COMPLETED
        assert await store.get_tip_data(payment_hash) is None
    finally:
        await store.close()
    with pytest.raises(StorageUnavailable):
        await pg.ping()
