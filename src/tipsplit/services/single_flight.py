"""One answer for many callers: concurrent callers of the same question share one call, and answers are reused briefly.

Whatever reaches Blink on a caller's behalf (a health probe, a payment's
status, an owner check) goes through this, so that a burst of requests costs
one Blink call instead of one each. Failures are never remembered: the next
caller asks again.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Shares one in-flight call per key; remembers an answer for `ttl_seconds` when `keep(answer)` says so."""

    def __init__(
        self, ttl_seconds: float, keep: Callable[[T], bool] = lambda _answer: True, max_entries: int = 10_000
    ) -> None:
        self._ttl = ttl_seconds
        self._keep = keep
        self._max = max_entries
        self._entries: dict[str, tuple[float, T]] = {}
        self._in_flight: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        """The remembered answer, or the answer of one `call` shared by every caller asking meanwhile.

        A caller that is cancelled stops waiting; the shared call goes on for the others.
        """
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._in_flight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(call())
            self._in_flight[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(pending)

    def _finished(self, key: str, done: asyncio.Future[T]) -> None:
        del self._in_flight[key]
        if done.cancelled() or done.exception() is not None or not self._keep(done.result()):
            return
        now = time.monotonic()
        if len(self._entries) >= self._max:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries[key] = (now + self._ttl, done.result())
