"""Fan-out of ledger events to live GraphQL subscriptions, in commit order.

A stream registers the moment it is created (not at its first read), so no
event committed after a subscription starts can slip past it.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from tipsplit.sim.ledger import LedgerEvent

EventFilter = Callable[[LedgerEvent], bool]


class EventStream:
    """An async iterator over matching events, optionally led by ready-made items."""

    def __init__(self, broker: "Broker", accept: EventFilter, first: list[Any] | None = None) -> None:
        self._broker = broker
        self._accept = accept
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in first or []:
            self._queue.put_nowait(item)
        broker.add(self)

    def offer(self, event: LedgerEvent) -> None:
        if self._accept(event):
            self._queue.put_nowait(event)

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

    def add(self, stream: EventStream) -> None:
        self._streams.add(stream)

    def discard(self, stream: EventStream) -> None:
        self._streams.discard(stream)

    def stream(self, accept: EventFilter, first: list[Any] | None = None) -> EventStream:
        return EventStream(self, accept, first)

    @property
    def stream_count(self) -> int:
        return len(self._streams)
