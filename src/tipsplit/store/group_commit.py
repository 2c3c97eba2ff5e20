"""Group commit: concurrent writes of one kind share one statement and one commit.

At 64 concurrent sales the cost of storing a payment is round trips and
commits, not rows. Writes submitted while a batch is being written wait for
the next batch, which then carries all of them: one transaction for many
callers, each of whom still waits until its own row is durable and gets its
own answer. A lone write (the quiet case) is written at once, alone. When a
batch fails, its items are written one by one, so a bad item fails only its
own caller; a failure no item can cause (`shared_failures`, e.g. the database
being unreachable) fails the whole batch at once instead of being retried item
by item, so nobody waits behind a queue of doomed attempts.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_BATCH = 256


class GroupCommit(Generic[T, R]):
    """Feeds `write_batch` with the items submitted concurrently; `write_batch` returns one result per item, in order."""

    def __init__(
        self,
        write_batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        key: Callable[[T], Hashable] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        shared_failures: tuple[type[Exception], ...] = (),
    ) -> None:
        self._write_batch = write_batch
        self._key = key
        self._max_batch = max_batch
        self._shared_failures = shared_failures
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; returns its result once its batch is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queued.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            await asyncio.sleep(0)
            while self._queued:
                batch, self._queued = self._queued[: self._max_batch], self._queued[self._max_batch :]
                first, repeats = self._split_repeats(batch)
                await self._write(first)
                self._queued[:0] = repeats
        except asyncio.CancelledError:
            for _, future in batch + self._queued:
                future.cancel()
            self._queued = []
            raise

    def _split_repeats(
        self, batch: list[tuple[T, asyncio.Future[R]]]
    ) -> tuple[list[tuple[T, asyncio.Future[R]]], list[tuple[T, asyncio.Future[R]]]]:
        """Items with the same key never share a batch: the later ones go in the next, and see the first's row."""
        if self._key is None:
            return batch, []
        seen: set[Hashable] = set()
        first: list[tuple[T, asyncio.Future[R]]] = []
        repeats: list[tuple[T, asyncio.Future[R]]] = []
        for entry in batch:
            key = self._key(entry[0])
            (repeats if key in seen else first).append(entry)
            seen.add(key)
        return first, repeats

    async def _write(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write_batch([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, self._shared_failures):
                for _, future in batch:
                    _settle(future, exc)
                return
            for entry in batch:
                await self._write([entry])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: "asyncio.Future[R]", outcome: "R | BaseException") -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
