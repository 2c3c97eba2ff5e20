"""Group commit: concurrent writes share a batch, each caller gets its own answer, a bad item fails alone."""

import asyncio
from collections.abc import Sequence

import pytest

from tipsplit.store.group_commit import GroupCommit


class Table:
    """A table with a unique key that records each batch it was written in."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.batches: list[list[str]] = []

    async def write(self, items: Sequence[tuple[str, int]]) -> list[bool]:
        await asyncio.sleep(0.01)
        if any(value < 0 for _, value in items):
            raise ValueError("negative value")
        self.batches.append([key for key, _ in items])
        new = []
        for key, value in items:
            new.append(key not in self.rows)
            self.rows.setdefault(key, value)
        return new


async def test_concurrent_writes_share_batches_and_each_caller_gets_its_answer() -> None:
    table = Table()
    group = GroupCommit(table.write, key=lambda item: item[0])
    results = await asyncio.gather(*(group.submit((f"k{i}", i)) for i in range(64)))
    assert results == [True] * 64
    assert len(table.rows) == 64
    assert len(table.batches) <= 2, table.batches


async def test_a_lone_write_is_written_alone_at_once() -> None:
    table = Table()
    group = GroupCommit(table.write)
    assert await group.submit(("only", 1)) is True
    assert table.batches == [["only"]]


async def test_the_same_key_twice_never_shares_a_batch() -> None:
    table = Table()
    group = GroupCommit(table.write, key=lambda item: item[0])
    first, second = await asyncio.gather(group.submit(("same", 1)), group.submit(("same", 2)))
    assert (first, second) == (True, False)
    assert table.rows == {"same": 1}
    assert table.batches == [["same"], ["same"]]


async def test_a_bad_item_fails_only_its_own_caller() -> None:
    table = Table()
    group = GroupCommit(table.write)
    results = await asyncio.gather(
        group.submit(("a", 1)), group.submit(("bad", -1)), group.submit(("b", 2)), return_exceptions=True
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], ValueError)
    assert set(table.rows) == {"a", "b"}


async def test_batches_are_bounded() -> None:
    table = Table()
    group = GroupCommit(table.write, max_batch=10)
    await asyncio.gather(*(group.submit((f"k{i}", i)) for i in range(35)))
    assert max(len(batch) for batch in table.batches) == 10
    assert len(table.rows) == 35


async def test_a_cancelled_caller_does_not_cancel_the_write() -> None:
    table = Table()
    group = GroupCommit(table.write)
    task = asyncio.ensure_future(group.submit(("kept", 1)))
    await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert table.rows == {"kept": 1}


async def test_a_shared_failure_fails_the_whole_batch_in_one_attempt() -> None:
    attempts: list[int] = []

    async def unreachable(items: Sequence[tuple[str, int]]) -> list[bool]:
        attempts.append(len(items))
        await asyncio.sleep(0.01)
        raise ConnectionError("database unreachable")

    group = GroupCommit(unreachable, shared_failures=(ConnectionError,))
    results = await asyncio.gather(*(group.submit((str(i), i)) for i in range(5)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert attempts == [5], "one attempt for the batch, none item by item"
