"""ColdStore against a real PostgreSQL: inserts, claims, legs, completion, stats."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import TEST_API_KEY, insert, new_hash, tip_dict
from tests.support.tcp_proxy import behind, proxy_for
from tipsplit.domain.models import TipData, plan_legs
from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.store.cold import ColdStore
from tipsplit.store.errors import PaymentStateError, StorageUnavailable


def dest_hash() -> str:
    return new_hash()


async def settle_all_legs(cold: ColdStore, payment_hash: str) -> None:
    """Drive every open leg to succeeded the way the settlement engine does."""
    for leg in await cold.legs(payment_hash):
        if leg.status == LegStatus.SKIPPED:
            continue
        await cold.set_leg_invoice(payment_hash, leg.leg, dest_hash(), f"lnbc{leg.amount}")
        assert await cold.transition_leg(payment_hash, leg.leg, {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True)
        assert await cold.transition_leg(payment_hash, leg.leg, {LegStatus.PAYING}, LegStatus.SUCCEEDED)


async def test_insert_and_get_round_trip(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    payment = await cold.get_payment(payment_hash)
    assert payment is not None
    assert payment.status == PaymentStatus.PENDING
    assert (payment.total_amount, payment.base_amount, payment.tip_amount) == (11_500, 10_000, 1_500)
    assert keyring.decrypt(payment.user_api_key_encrypted) == TEST_API_KEY
    assert [r.username for r in payment.tip_recipients] == ["alice_tips", "bob_tips"]
    assert [(leg.leg, leg.amount, leg.status) for leg in payment.legs] == [
        ("base", 10_000, LegStatus.PENDING),
        ("tip:1", 900, LegStatus.PENDING),
        ("tip:2", 600, LegStatus.PENDING),
    ]
    assert payment.legs[0].destination_wallet_id == "merchant-wallet-1"
    assert payment.legs[0].memo.startswith("BlinkPOS: 10000 + 15% tip")
    events = await cold.events(payment_hash)
    assert [e.event_type for e in events] == ["created"]
    assert "userApiKey" not in events[0].event_data


async def test_duplicate_insert_is_refused_quietly(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    tip = TipData.model_validate(tip_dict())
    again = await cold.insert_payment(
        payment_hash, tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip), {}, datetime.now(UTC) + timedelta(hours=1)
    )
    assert again is False
    assert [e.event_type for e in await cold.events(payment_hash)] == ["created"]


async def test_zero_sat_legs_are_recorded_as_skipped(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(
        cold, keyring, tipAmount=1, tipRecipients=[{"username": "alice_tips", "share": 50}, {"username": "bob_tips", "share": 50}]
    )
    legs = await cold.legs(payment_hash)
    assert [(leg.leg, leg.amount, leg.status) for leg in legs][1:] == [
        ("tip:1", 1, LegStatus.PENDING),
        ("tip:2", 0, LegStatus.SKIPPED),
    ]


async def test_plaintext_key_is_refused(cold: ColdStore) -> None:
    tip = TipData.model_validate(tip_dict())
    with pytest.raises(ValueError, match="not encrypted"):
        await cold.insert_payment(new_hash(), tip, TEST_API_KEY, plan_legs(tip), {}, datetime.now(UTC))


async def test_fifty_concurrent_claimers_one_wins(migrated_url: str, keyring: KeyRing) -> None:
    stores = [await ColdStore.connect(migrated_url, min_size=1, max_size=2) for _ in range(5)]
    try:
        payment_hash = await insert(stores[0], keyring)
        results = await asyncio.gather(
            *(stores[i % 5].claim(payment_hash, f"owner-{i}", 60) for i in range(50))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert winners[0].status == PaymentStatus.PROCESSING
        assert len(winners[0].legs) == 3
        claimed = [e for e in await stores[0].events(payment_hash) if e.event_type == "claimed"]
        assert len(claimed) == 1 and claimed[0].event_data["previousStatus"] == "pending"
    finally:
        for store in stores:
            await store.close()


async def test_expired_lease_is_taken_over(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    assert await cold.claim(payment_hash, "first", 0.2) is not None
    assert await cold.claim(payment_hash, "second", 60) is None
    assert await cold.stale_claims() == [] or payment_hash not in await cold.stale_claims()
    await asyncio.sleep(0.3)
    assert payment_hash in await cold.stale_claims(limit=1000)
    taken = await cold.claim(payment_hash, "second", 60)
    assert taken is not None and taken.claim_owner == "second" and taken.settle_attempts == 2
    assert not await cold.renew_claim(payment_hash, "first", 60)
    assert not await cold.release_claim(payment_hash, "first", PaymentStatus.PENDING, "not_paid_yet")
    assert await cold.renew_claim(payment_hash, "second", 60)
    claimed = [e.event_data for e in await cold.events(payment_hash) if e.event_type == "claimed"]
    assert claimed[1]["previousOwner"] == "first" and claimed[1]["previousStatus"] == "processing"


async def test_release_back_to_pending_and_expire(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    await cold.claim(payment_hash, "me", 60)
    assert await cold.release_claim(payment_hash, "me", PaymentStatus.PENDING, "not_paid_yet", {"why": "unpaid"})
    assert payment_hash in await cold.pending_payments(limit=10_000)
    await cold.claim(payment_hash, "me", 60)
    assert await cold.expire(payment_hash, "me")
    payment = await cold.get_payment(payment_hash)
    assert payment is not None and payment.status == PaymentStatus.EXPIRED and payment.claim_owner is None
    with pytest.raises(ValueError):
        await cold.release_claim(payment_hash, "me", PaymentStatus.COMPLETED, "nope")


async def test_leg_invoice_is_set_once(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    await cold.claim(payment_hash, "me", 60)
    first, second = dest_hash(), dest_hash()
    leg = await cold.set_leg_invoice(payment_hash, "base", first, "lnbc-first")
    assert (leg.status, leg.dest_payment_hash) == (LegStatus.INVOICED, first)
    again = await cold.set_leg_invoice(payment_hash, "base", second, "lnbc-second")
    assert (again.dest_payment_hash, again.dest_payment_request) == (first, "lnbc-first")
    racing = await asyncio.gather(*(cold.set_leg_invoice(payment_hash, "tip:1", dest_hash(), "r") for _ in range(10)))
    assert len({leg.dest_payment_hash for leg in racing}) == 1
    with pytest.raises(LookupError):
        await cold.set_leg_invoice(payment_hash, "tip:9", dest_hash(), "r")
    assert [e.event_type for e in await cold.events(payment_hash)].count("leg_invoiced") == 2


async def test_leg_transitions_are_conditional(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    assert not await cold.transition_leg(payment_hash, "base", {LegStatus.INVOICED}, LegStatus.PAYING)
    await cold.set_leg_invoice(payment_hash, "base", dest_hash(), "r")
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    assert await cold.transition_leg(
        payment_hash, "base", {LegStatus.INVOICED}, LegStatus.FAILED, error="route not found",
        count_attempt=True, next_attempt_at=retry_at, event_type="leg_failed",
    )
    leg = (await cold.legs(payment_hash))[0]
    assert (leg.status, leg.attempts, leg.last_error) == (LegStatus.FAILED, 1, "route not found")
    assert abs((leg.next_attempt_at - retry_at).total_seconds()) < 0.01
    assert await cold.reset_leg_invoice(payment_hash, "base", {LegStatus.FAILED})
    leg = (await cold.legs(payment_hash))[0]
    assert leg.dest_payment_hash is None and leg.status == LegStatus.FAILED
    assert await cold.set_leg_wallet(payment_hash, "tip:1", "alice-wallet", WalletCurrency.USD)
    tip = (await cold.legs(payment_hash))[1]
    assert (tip.destination_wallet_id, tip.destination_currency) == ("alice-wallet", WalletCurrency.USD)


async def test_each_leg_remembers_what_its_destination_wallet_holds(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = new_hash()
    tip = TipData.model_validate(tip_dict(userWalletId="merchant-usd"))
    expires = datetime.now(UTC) + timedelta(hours=1)
    await cold.insert_payment(
        payment_hash, tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip),
        {"alice_tips": "alice-usd", "bob_tips": "bob-btc"}, expires,
        {"merchant-usd": WalletCurrency.USD, "alice-usd": WalletCurrency.USD, "bob-btc": WalletCurrency.BTC},
    )
    legs = {leg.leg: (leg.destination_wallet_id, leg.destination_currency) for leg in await cold.legs(payment_hash)}
    assert legs == {
        "base": ("merchant-usd", WalletCurrency.USD),
        "tip:1": ("alice-usd", WalletCurrency.USD),
        "tip:2": ("bob-btc", WalletCurrency.BTC),
    }


async def test_complete_requires_settled_legs_and_keeps_stats(cold: ColdStore, keyring: KeyRing) -> None:
    username = f"stat_{new_hash()[:10]}"
    amounts = []
    for tip in (100, 301):
        payment_hash = await insert(
            cold, keyring, tipAmount=tip, tipRecipients=[{"username": username, "share": 100}]
        )
        await cold.claim(payment_hash, "me", 60)
        with pytest.raises(PaymentStateError, match="not settled"):
            await cold.complete(payment_hash, "me", {"success": True})
        await settle_all_legs(cold, payment_hash)
        assert not await cold.complete(payment_hash, "someone-else", {"success": True})
        assert await cold.complete(payment_hash, "me", {"success": True, "userApiKey": TEST_API_KEY})
        amounts.append(tip)
    payment = await cold.get_payment(payment_hash)
    assert payment is not None and payment.status == PaymentStatus.COMPLETED
    assert payment.user_payment_hash == payment.leg("base").dest_payment_hash
    assert payment.tip_payment_hash == payment.leg("tip:1").dest_payment_hash
    completed = [e for e in await cold.events(payment_hash) if e.event_type == "completed"][0]
    assert "userApiKey" not in completed.event_data["result"]
    stats = {s.recipient_username: s for s in await cold.recipient_stats(limit=10_000)}[username]
    assert (stats.total_tips_received, stats.total_tips_count) == (401, 2)
    assert str(stats.average_tip_amount) == "200.50"


async def test_fail_schedules_retry_until_attempts_run_out(migrated_url: str, keyring: KeyRing) -> None:
    cold = await ColdStore.connect(migrated_url, min_size=1, max_size=2, max_settle_attempts=2, retry_base_seconds=0.05)
    try:
        payment_hash = await insert(cold, keyring)
        await cold.claim(payment_hash, "me", 60)
        assert await cold.fail(payment_hash, "me", "blink down")
        payment = await cold.get_payment(payment_hash)
        assert payment is not None and payment.status == PaymentStatus.FAILED and payment.next_attempt_at is not None
        assert payment.error_message == "blink down"
        await asyncio.sleep(0.1)
        assert payment_hash in await cold.retryable_failed(datetime.now(UTC), limit=10_000)
        assert await cold.claim(payment_hash, "me", 60) is None
        assert await cold.claim(payment_hash, "me", 60, allow_failed=True) is not None
        assert await cold.fail(payment_hash, "me", "still down")
        payment = await cold.get_payment(payment_hash)
        assert payment is not None and payment.next_attempt_at is None
        assert payment_hash not in await cold.retryable_failed(datetime.now(UTC) + timedelta(days=1), limit=10_000)
    finally:
        await cold.close()


async def test_mark_paid_once(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    assert not await cold.mark_paid(payment_hash, "me")
    await cold.claim(payment_hash, "me", 60)
    assert await cold.mark_paid(payment_hash, "me")
    assert not await cold.mark_paid(payment_hash, "me")
    assert [e.event_type for e in await cold.events(payment_hash)].count("paid") == 1


async def test_stats_and_listing(cold: ColdStore, keyring: KeyRing) -> None:
    username = f"list_{new_hash()[:10]}"
    hashes = [await insert(cold, keyring, tipRecipients=[{"username": username, "share": 100}]) for _ in range(3)]
    listed = await cold.list_payments(recipient=username)
    assert [p.payment_hash for p in listed] == hashes[::-1]
    assert listed[0].tip_recipients[0].username == username
    assert len(await cold.list_payments(recipient=username, limit=2, offset=2)) == 1
    pending = await cold.list_payments(status=PaymentStatus.PENDING, since=datetime.now(UTC) - timedelta(minutes=5))
    assert set(hashes) <= {p.payment_hash for p in pending} or len(pending) == 50
    stats = await cold.stats_24h()
    assert stats["pending_count"] >= 3 and set(stats) >= {"completed_count", "total_tips_processed", "average_tip_amount"}


async def test_pool_recovers_after_connections_are_killed(cold: ColdStore, keyring: KeyRing) -> None:
    payment_hash = await insert(cold, keyring)
    async with cold._connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    await asyncio.sleep(0.1)
    for _ in range(3):
        assert (await cold.get_payment(payment_hash)) is not None
    assert await cold.claim(payment_hash, "me", 60) is not None


async def test_cut_connections_are_replaced_not_reused(migrated_url: str, keyring: KeyRing) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    cold = await ColdStore.connect(behind(migrated_url, port), min_size=3, max_size=3)
    try:
        payment_hash = await insert(cold, keyring)
        await proxy.cut()
        failures = 0
        for _ in range(10):
            try:
                await cold.add_event(payment_hash, "probe", {})
            except StorageUnavailable:
                failures += 1
        assert failures <= 3
        await proxy.stop()
        with pytest.raises(StorageUnavailable):
            await cold.get_payment(payment_hash)
        await proxy.start()
        assert await cold.get_payment(payment_hash) is not None
    finally:
        await cold.close()
        await proxy.stop()
