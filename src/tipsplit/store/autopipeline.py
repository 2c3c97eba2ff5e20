"""Redis commands issued in the same event-loop turn travel together, as one pipeline.

Every round trip to Redis costs a socket write and read in each direction,
and on a busy service that system-call cost, not Redis, bounds the hot store.
Concurrent settlements and requests issue their commands independently; this
collects the commands issued before the event loop next runs its callbacks
and sends them as one non-transactional pipeline: one write, one read. Each
caller still gets its own reply or its own error. A lone command (the quiet
case) is sent on its own, as before. On a Redis Cluster the pipeline is split
by node (one write and read per node), so commands need not share a slot.
"""

import asyncio
from typing import Any

from tipsplit.store.redis_client import RedisClient


class AutoPipeline:
    """Batches independent commands from concurrent tasks into pipelines (no atomicity is implied)."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command (`"SET", key, value, ...`); the future holds its reply or its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush_soon)
        self._queued.append((args, future))
        return future

    def _flush_soon(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                replies: list[Any] = [await self._client.execute_command(*batch[0][0])]
            else:
                pipe = self._client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
