"""Blink invoice budgets shared through real Redis, and kept per process while Redis is down."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.tcp_proxy import unused_port
from tipsplit.store.budget import BudgetPolicy, BudgetState, InvoiceBudget, invoices_for, own_invoices
from tipsplit.store.hot import HotStore


@pytest.fixture()
async def hot(redis_url: str, key_prefix: str) -> AsyncIterator[HotStore]:
    store = HotStore(redis_url, prefix=key_prefix)
    yield store
    await store.close()


async def test_a_budget_stays_margin_points_below_blinks_limit(hot: HotStore) -> None:
    budget = InvoiceBudget(hot, BudgetPolicy(points=10, window_seconds=60, margin=3))
    taken = [await budget.take(own_invoices("pos-wallet")) for _ in range(9)]
    assert [t.allowed for t in taken] == [True] * 7 + [False] * 2
    assert [t.remaining for t in taken[:7]] == [6, 5, 4, 3, 2, 1, 0]
    assert 55 <= taken[-1].retry_after <= 60
    state = await budget.state(own_invoices("pos-wallet"))
    assert (state.used, state.remaining, state.blocked_seconds) == (7, 0, 0)
    # Another account, and the same account's on-behalf bucket, are budgets of their own.
    assert (await budget.take(own_invoices("other-wallet"))).allowed
    assert (await budget.take(invoices_for("pos-wallet"))).allowed


async def test_instances_share_one_budget(hot: HotStore, redis_url: str, key_prefix: str) -> None:
    second = HotStore(redis_url, prefix=key_prefix)
    try:
        policy = BudgetPolicy(points=6, window_seconds=60, margin=1)
        one, two = InvoiceBudget(hot, policy), InvoiceBudget(second, policy)
        results = await asyncio.gather(*(b.take(invoices_for("merchant")) for b in (one, two) * 5))
    finally:
        await second.close()
    assert sum(r.allowed for r in results) == 5


async def test_points_come_back_when_the_window_slides(hot: HotStore) -> None:
    budget = InvoiceBudget(hot, BudgetPolicy(points=3, window_seconds=0.5, margin=1))
    assert [(await budget.take("b")).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.6)
    assert (await budget.take("b")).allowed


async def test_a_block_from_blink_refuses_until_it_ends(hot: HotStore) -> None:
    budget = InvoiceBudget(hot, BudgetPolicy(points=60, window_seconds=60, block_seconds=300, margin=3))
    await budget.blocked_by_blink(invoices_for("merchant"))
    refused = await budget.take(invoices_for("merchant"))
    assert not refused.allowed and 295 <= refused.retry_after <= 300
    # The block is in Redis: a fresh instance sees it too.
    other = InvoiceBudget(hot, budget.policy)
    assert not (await other.take(invoices_for("merchant"))).allowed
    state = await other.state(invoices_for("merchant"))
    assert state.remaining == 0 and state.blocked_seconds > 290


async def test_without_redis_each_process_keeps_the_budget_itself(key_prefix: str) -> None:
    dead = HotStore(f"redis://127.0.0.1:{unused_port()}/0", prefix=key_prefix)
    try:
        budget = InvoiceBudget(dead, BudgetPolicy(points=4, window_seconds=60, margin=1))
        assert [(await budget.take("b")).allowed for _ in range(4)] == [True, True, True, False]
        await budget.blocked_by_blink("c")
        assert not (await budget.take("c")).allowed
        # What health and the dashboard show is this process's own count and block.
        assert await budget.state("b") == BudgetState(used=3, blocked_seconds=0, remaining=0)
        blocked = await budget.state("c")
        assert blocked.blocked_seconds > 0 and blocked.remaining == 0
    finally:
        await dead.close()
