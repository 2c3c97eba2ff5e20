"""Payments against a real PostgreSQL: recording one or many, reading, listing, finding by prefix."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.store.conftest import TEST_API_KEY, insert, new_hash, tip_dict
from tests.support.pg_queries import QueryCounter
from tipsplit.domain.models import TipData, plan_legs
from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.store.payments import NewPayment
from tipsplit.store.postgres import PostgresStore


async def test_insert_and_get_round_trip(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    payment = await pg.payments.get(payment_hash)
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
    events = await pg.events.of_payment(payment_hash)
    assert [e.event_type for e in events] == ["created"]
    assert "userApiKey" not in events[0].event_data


async def test_duplicate_insert_is_refused_quietly(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    tip = TipData.model_validate(tip_dict())
    again = await pg.payments.insert(
        NewPayment(payment_hash, tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip), datetime.now(UTC) + timedelta(hours=1))
    )
    assert again is False
    assert [e.event_type for e in await pg.events.of_payment(payment_hash)] == ["created"]


async def test_zero_sat_legs_are_recorded_as_skipped(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(
        pg, keyring, tipAmount=1, tipRecipients=[{"username": "alice_tips", "share": 50}, {"username": "bob_tips", "share": 50}]
    )
    legs = await pg.legs.of_payment(payment_hash)
    assert [(leg.leg, leg.amount, leg.status) for leg in legs][1:] == [
        ("tip:1", 1, LegStatus.PENDING),
        ("tip:2", 0, LegStatus.SKIPPED),
    ]


async def test_plaintext_key_is_refused(pg: PostgresStore) -> None:
    tip = TipData.model_validate(tip_dict())
    with pytest.raises(ValueError, match="not encrypted"):
        await pg.payments.insert(NewPayment(new_hash(), tip, TEST_API_KEY, plan_legs(tip), datetime.now(UTC)))


async def test_each_leg_remembers_what_its_destination_wallet_holds(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = new_hash()
    tip = TipData.model_validate(tip_dict(userWalletId="merchant-usd"))
    expires = datetime.now(UTC) + timedelta(hours=1)
    await pg.payments.insert(
        NewPayment(
            payment_hash, tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip), expires,
            recipient_wallets={"alice_tips": "alice-usd", "bob_tips": "bob-btc"},
            wallet_currencies={"merchant-usd": WalletCurrency.USD, "alice-usd": WalletCurrency.USD,
                               "bob-btc": WalletCurrency.BTC},
        )
    )
    legs = {leg.leg: (leg.destination_wallet_id, leg.destination_currency) for leg in await pg.legs.of_payment(payment_hash)}
    assert legs == {
        "base": ("merchant-usd", WalletCurrency.USD),
        "tip:1": ("alice-usd", WalletCurrency.USD),
        "tip:2": ("bob-btc", WalletCurrency.BTC),
    }


async def test_stats_and_listing(pg: PostgresStore, keyring: KeyRing) -> None:
    username = f"list_{new_hash()[:10]}"
    hashes = [await insert(pg, keyring, tipRecipients=[{"username": username, "share": 100}]) for _ in range(3)]
    listed = await pg.payments.page(recipient=username)
    assert [p.payment_hash for p in listed] == hashes[::-1]
    assert listed[0].tip_recipients[0].username == username
    assert len(await pg.payments.page(recipient=username, limit=2, offset=2)) == 1
    pending = await pg.payments.page(status=PaymentStatus.PENDING, since=datetime.now(UTC) - timedelta(minutes=5))
    assert set(hashes) <= {p.payment_hash for p in pending} or len(pending) == 50
    stats = await pg.reports.stats_24h()
    assert stats["pending_count"] >= 3 and set(stats) >= {"completed_count", "total_tips_processed", "average_tip_amount"}


def new_payment(keyring: KeyRing, payment_hash: str | None = None, source: str | None = None, **overrides: Any) -> NewPayment:
    tip = TipData.model_validate(tip_dict(**overrides))
    return NewPayment(
        payment_hash or new_hash(), tip, keyring.encrypt(TEST_API_KEY), plan_legs(tip),
        datetime.now(UTC) + timedelta(hours=1), source,
    )


async def test_a_batch_records_what_one_insert_records_in_one_statement(pg: PostgresStore, keyring: KeyRing) -> None:
    stored = await insert(pg, keyring)
    batch = [new_payment(keyring, source="tip-store.json") for _ in range(3)]
    repeated = new_payment(keyring, batch[0].payment_hash, memo="a later duplicate in the batch")
    with QueryCounter(pg) as queries:
        new = await pg.payments.insert_many([*batch, new_payment(keyring, stored), repeated])
        assert await queries.count() == 1, queries.statements
    assert new == {item.payment_hash for item in batch}
    single = await pg.payments.get(stored)
    for item in batch:
        payment = await pg.payments.get(item.payment_hash)
        assert payment is not None and single is not None
        assert payment.memo == "table 4", "the first of two entries with one hash is the one recorded"
        assert [(r.position, r.username, r.share) for r in payment.tip_recipients] == [
            (r.position, r.username, r.share) for r in single.tip_recipients
        ]
        assert [(leg.leg, leg.amount, leg.status, leg.destination_wallet_id, leg.destination_currency)
                for leg in payment.legs] == [
            (leg.leg, leg.amount, leg.status, leg.destination_wallet_id, leg.destination_currency)
            for leg in single.legs
        ]
        events = await pg.events.of_payment(item.payment_hash)
        assert [e.event_type for e in events] == ["created"] and events[0].event_data["source"] == "tip-store.json"
    assert "source" not in (await pg.events.of_payment(stored))[0].event_data
    assert await pg.payments.insert_many([]) == set()


async def test_a_batch_with_one_bad_entry_records_nothing(pg: PostgresStore, keyring: KeyRing) -> None:
    good = new_payment(keyring)
    bad = NewPayment(good.payment_hash + "x", good.tip, TEST_API_KEY, good.legs, good.expires_at)
    with pytest.raises(ValueError, match="not encrypted"):
        await pg.payments.insert_many([good, bad])
    assert await pg.payments.get(good.payment_hash) is None


async def test_hashes_are_found_by_their_start(pg: PostgresStore, keyring: KeyRing) -> None:
    prefix = new_hash()[:20]
    hashes = sorted([await insert(pg, keyring, prefix + new_hash()[20:]) for _ in range(3)])
    assert await pg.payments.hashes_starting_with(prefix) == hashes[:2], "at most two: enough to say 'several'"
    assert await pg.payments.hashes_starting_with(prefix, limit=10) == hashes
    assert await pg.payments.hashes_starting_with(hashes[1]) == [hashes[1]]
    assert await pg.payments.hashes_starting_with(new_hash()[:20]) == []


async def test_a_payment_with_its_recipients_and_legs_is_one_statement(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert await pg.payments.get(payment_hash) is not None, "asyncpg learns the legs' row type once per connection"
    with QueryCounter(pg) as queries:
        payment = await pg.payments.get(payment_hash)
        assert await queries.count() == 1, queries.statements
    assert payment is not None
    assert payment.legs == await pg.legs.of_payment(payment_hash)
    tip = payment.leg("tip:1")
    assert isinstance(tip.share, Decimal) and isinstance(tip.created_at, datetime) and tip.created_at.tzinfo
    assert tip.destination_currency is WalletCurrency.BTC and tip.status is LegStatus.PENDING
    assert (await pg.payments.get(payment_hash, with_legs=False)).legs == []


async def test_concurrent_inserts_share_one_statement_and_a_later_duplicate_is_refused(
    pg: PostgresStore, keyring: KeyRing
) -> None:
    sales = [new_payment(keyring) for _ in range(5)]
    duplicate = new_payment(keyring, sales[0].payment_hash, memo="the same hash, a moment later")
    with QueryCounter(pg) as queries:
        answers = await asyncio.gather(*(pg.payments.insert(sale) for sale in [*sales, duplicate]))
        await queries.count()
    inserts = [statement for statement in queries.statements if "INSERT INTO payment_splits" in statement]
    assert answers == [True] * 5 + [False]
    assert len(inserts) == 2, "one statement for the five sales, one for the duplicate, which never shares their batch"
    recorded = await pg.payments.get(sales[0].payment_hash)
    assert recorded is not None and recorded.memo == "table 4"
    for sale in sales:
        assert [e.event_type for e in await pg.events.of_payment(sale.payment_hash)] == ["created"]


async def test_an_insert_in_the_callers_transaction_is_its_own_statement(pg: PostgresStore, keyring: KeyRing) -> None:
    sale = new_payment(keyring)
    async with pg.db.transaction() as conn:
        assert await pg.payments.insert(sale, conn=conn) is True
        assert await pg.payments.insert(new_payment(keyring, sale.payment_hash), conn=conn) is False
    assert await pg.payments.get(sale.payment_hash) is not None
