"""Fan-out of ledger events to live GraphQL subscriptions, in commit order.

A stream registers the moment it is created (not at its first read), so no
event committed after a subscription starts can slip past it.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from tipsplit.sim.ledger import LedgerEvent

EventFilter = Callable[[LedgerEvent], bool]
CLOCK_MOVED = object()
"""Put on streams that asked for it when /sim/clock moves time, so time-driven updates are re-checked at once."""


class EventStream:
    """An async iterator over matching events, optionally led by ready-made items."""

    def __init__(
        self, broker: "Broker", accept: EventFilter, first: list[Any] | None = None, wake_on_clock: bool = False
    ) -> None:
        self._broker = broker
        self._accept = accept
        self.wake_on_clock = wake_on_clock
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in first or []:
            self._queue.put_nowait(item)
        broker.add(self)

    def offer(self, event: LedgerEvent) -> None:
        if self._accept(event):
            self._queue.put_nowait(event)

    def wake(self) -> None:
        if self.wake_on_clock:
            self._queue.put_nowait(CLOCK_MOVED)

    async def next(self, timeout: float | None) -> Any:
        """The next item, or None once `timeout` seconds pass without one (None waits for ever)."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Any:
        return await self._queue.get()

    async def aclose(self) -> None:
        self._broker.discard(self)


class Broker:
    """Receives every ledger event (as a ledger listener) and hands it to each interested stream."""

    def __init__(self) -> None:
        self._streams: set[EventStream] = set()

    def publish(self, event: LedgerEvent) -> None:
        for stream in list(self._streams):
            stream.offer(event)

    def clock_moved(self) -> None:
        for stream in list(self._streams):
            stream.wake()

    def add(self, stream: EventStream) -> None:
        self._streams.add(stream)

    def discard(self, stream: EventStream) -> None:
        self._streams.discard(stream)

    def stream(self, accept: EventFilter, first: list[Any] | None = None, wake_on_clock: bool = False) -> EventStream:
        return EventStream(self, accept, first, wake_on_clock)

    @property
    def stream_count(self) -> int:
        return len(self._streams)
