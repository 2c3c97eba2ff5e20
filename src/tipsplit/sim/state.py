"""Everything one simulator instance holds, and the per-request context GraphQL resolvers see."""

import asyncio
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from tipsplit.sim.clock import SimClock
from tipsplit.sim.events import Broker
from tipsplit.sim.faults import FaultBook
from tipsplit.sim.ledger import ApiKey, Ledger
from tipsplit.sim.limits import RateLimits
from tipsplit.sim.prices import PriceBook
from tipsplit.sim.webhooks import WebhookDispatcher


class Droppable(Protocol):
    """A live websocket session the control API can cut, to test client reconnects."""

    async def drop(self) -> None: ...


@dataclass
class SimState:
    seed: int
    clock: SimClock
    ledger: Ledger
    prices: PriceBook
    faults: FaultBook
    broker: Broker
    webhooks: WebhookDispatcher
    limits: RateLimits
    sockets: set[Droppable] = field(default_factory=set)
    # Milliseconds every GraphQL call over HTTP waits before its answer goes out: Blink's round trip seen
    # from a far-away client, so a benchmark can show what concurrency buys against a distant Blink.
    latency_ms: int = 0
    # GraphQL root fields received, by name, over both transports: lets a test bound how often a client asks.
    received: Counter[str] = field(default_factory=Counter)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def create(cls, seed: int = 0, rate_limits: bool = True, latency_ms: int = 0) -> "SimState":
        clock = SimClock()
        ledger = Ledger(seed=seed, clock=clock.now)
        prices = PriceBook()
        broker = Broker()
        webhooks = WebhookDispatcher(ledger, prices, seed)
        ledger.add_listener(broker.publish)
        ledger.add_listener(webhooks.on_event)
        if latency_ms < 0:
            raise ValueError("latency must not be negative")
        return cls(seed, clock, ledger, prices, FaultBook(seed), broker, webhooks, RateLimits(clock.now, rate_limits),
                   latency_ms=latency_ms)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after the answer has gone out (delayed settlements), cancelled on shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for session in list(self.sockets):
            await session.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.aclose()


@dataclass
class RequestContext:
    """Per-operation context; the fault fields tell the transport how to misbehave after execution."""

    sim: SimState
    api_key: ApiKey | None
    abort_status: int | None = None
    lose_answer_delay_ms: int | None = None
