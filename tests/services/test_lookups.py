"""The invoice-time lookup cache: one Blink call per question, however many sales ask at once."""

import asyncio

import pytest

from tipsplit.services.invoicing import LookupCache


class CountingBlink:
    """Answers a wallet id after a short delay, counting the calls; raises while `failing`."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    async def wallet(self) -> str:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.failing:
            raise LookupError("Blink has no such user")
        return f"wallet-{self.calls}"


async def test_concurrent_misses_share_one_call_and_later_ones_hit() -> None:
    cache, blink = LookupCache(ttl_seconds=60), CountingBlink()
    answers = await asyncio.gather(*(cache.get_or_fetch(blink.wallet, "wallet", "alice") for _ in range(50)))
    assert set(answers) == {"wallet-1"} and blink.calls == 1
    assert await cache.get_or_fetch(blink.wallet, "wallet", "alice") == "wallet-1"
    assert await cache.get_or_fetch(blink.wallet, "wallet", "bob") == "wallet-2"
    assert blink.calls == 2


async def test_an_expired_answer_is_asked_again() -> None:
    cache, blink = LookupCache(ttl_seconds=0), CountingBlink()
    assert await cache.get_or_fetch(blink.wallet, "wallet", "alice") == "wallet-1"
    assert await cache.get_or_fetch(blink.wallet, "wallet", "alice") == "wallet-2"


async def test_a_failure_reaches_every_waiter_and_is_not_remembered() -> None:
    cache, blink = LookupCache(ttl_seconds=60), CountingBlink()
    blink.failing = True
    results = await asyncio.gather(
        *(cache.get_or_fetch(blink.wallet, "wallet", "alice") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results) and blink.calls == 1
    blink.failing = False
    assert await cache.get_or_fetch(blink.wallet, "wallet", "alice") == "wallet-2"


async def test_a_cancelled_waiter_does_not_cancel_the_shared_call() -> None:
    cache, blink = LookupCache(ttl_seconds=60), CountingBlink()
    first = asyncio.ensure_future(cache.get_or_fetch(blink.wallet, "wallet", "alice"))
    second = asyncio.ensure_future(cache.get_or_fetch(blink.wallet, "wallet", "alice"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == "wallet-1"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert blink.calls == 1
