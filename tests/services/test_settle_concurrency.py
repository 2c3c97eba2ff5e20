"""How many payments the detection paths settle at once: a setting, by default derived from the pool."""

import asyncio
from types import SimpleNamespace
from typing import Any

from tipsplit.services.detection import Watchers
from tipsplit.settings import MAX_DERIVED_SETTLEMENTS, load_settings


def test_the_default_follows_the_pool_within_bounds() -> None:
    assert load_settings(_env_file=None).settlements_at_once == 32
    assert load_settings(_env_file=None, database_pool_max=5).settlements_at_once == 20
    assert load_settings(_env_file=None, database_pool_min=1, database_pool_max=1).settlements_at_once == 8
    assert load_settings(_env_file=None, database_pool_max=100).settlements_at_once == MAX_DERIVED_SETTLEMENTS


def test_the_setting_wins_over_the_default() -> None:
    assert load_settings(_env_file=None, settle_concurrency=3).settlements_at_once == 3


class CountingSettler:
    """Settles after a pause, remembering the most settlements that ran at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.settled: list[str] = []

    async def settle(self, payment_hash: str, *, blink_said_paid: bool = False) -> Any:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        self.settled.append(payment_hash)


async def test_watchers_settle_at_most_their_concurrency_at_once() -> None:
    settler = CountingSettler()
    accounts = SimpleNamespace(scope=None, all=[])
    watchers = Watchers(settler, SimpleNamespace(), accounts, 60, 60, [], concurrency=3)  # type: ignore[arg-type]
    for n in range(10):
        watchers.trigger(f"hash-{n}")
    while len(settler.settled) < 10:
        await asyncio.sleep(0.01)
    assert settler.most == 3
    await watchers.stop()
