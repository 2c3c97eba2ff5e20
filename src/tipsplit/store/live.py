"""Live payment views: the public status of a payment served from Redis, and change notices pushed by pub/sub.

A status poll or an open event stream asks for the view of one payment many
times while nothing changes. `LiveViews` keeps that view in Redis
(`live:view:{<hash>}`, the braces a Redis Cluster hash tag: a payment's view
and generation share a slot), so such a poll costs no PostgreSQL query; PostgreSQL is
read on a miss and the view cached again. It is never stale after a transition
commits: each committed transition (store/changes.py) moves the payment's
generation on, deletes the view and publishes the hash, and a view read from
PostgreSQL is cached only if the generation is still the one seen before the
read (hot.py `put_live_view`), so an older read can never overwrite a newer
invalidation. Losing every key loses nothing (PostgreSQL is the truth); Redis
down means reads go to PostgreSQL.

`LiveFeed` holds one pub/sub subscription per process and wakes the streams
watching a payment when its hash is announced (on a cluster, classic pub/sub:
every node passes the notice on); while the subscription is down (Redis, or
the cluster node it is on, restarting) the streams fall back to reading every
few seconds, and are all woken once it is back.
"""

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
import structlog

from tipsplit.domain.records import EventRecord, PaymentRecord
from tipsplit.domain.states import FINAL_PAYMENT_STATUSES
from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.hot import REDIS_DOWN_ERRORS, HotStore
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

# A final payment's view is kept briefly (streams and last polls read it once more), an active one until its
# invoice expires, but at least this long (a paid payment may be settled after its invoice's expiry).
FINAL_VIEW_TTL_SECONDS = 60
MIN_ACTIVE_VIEW_TTL_SECONDS = 60
# Changes that could not be announced (Redis down) are announced again later; at most this many are kept.
MAX_UNANNOUNCED = 10_000
RETRY_MIN_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
LISTEN_TIMEOUT_SECONDS = 30.0
SUBSCRIPTION_ERRORS: tuple[type[BaseException], ...] = (
    HotStoreUnavailable, redis.exceptions.RedisError, *REDIS_DOWN_ERRORS
)

Render = Callable[[PaymentRecord, list[EventRecord]], dict[str, Any]]


def view_ttl_ms(payment: PaymentRecord, now: datetime | None = None) -> int:
    """How long a view of `payment` may stay in Redis (a transition deletes it sooner)."""
    if payment.status in FINAL_PAYMENT_STATUSES:
        return FINAL_VIEW_TTL_SECONDS * 1000
    left = (payment.expires_at - (now or datetime.now(UTC))).total_seconds() if payment.expires_at else 0
    return math.floor(max(left, MIN_ACTIVE_VIEW_TTL_SECONDS) * 1000)


class LiveViews:
    """The public view of each payment, from Redis on a hit and from PostgreSQL (then cached) on a miss."""

    def __init__(self, pg: PostgresStore, hot: HotStore | None, metrics: MetricsCollector) -> None:
        self._pg = pg
        self._hot = hot
        self._metrics = metrics
        self._unannounced: dict[str, None] = {}
        self._retrier: asyncio.Task[None] | None = None

    async def get(self, payment_hash: str, render: Render) -> dict[str, Any] | None:
        """The payment's view as `render` builds it from the payment and its trail; None if it is not stored.

        Every caller must pass the same `render`: the cached view is shared by all.
        """
        generation = None
        if self._hot is not None:
            with contextlib.suppress(HotStoreUnavailable):
                body, generation = await self._hot.get_live_view(payment_hash)
                if body is not None:
                    self._metrics.record_cache_hit()
                    return json.loads(body)  # type: ignore[no-any-return]
        self._metrics.record_cache_miss()
        payment = await self._pg.payments.get(payment_hash)
        if payment is None:
            return None
        view = render(payment, await self._pg.events.of_payment(payment_hash))
        if self._hot is not None and generation is not None:
            body = json.dumps(view, separators=(",", ":"))
            with contextlib.suppress(HotStoreUnavailable):
                await self._hot.put_live_view(payment_hash, generation, body, view_ttl_ms(payment))
        return view

    async def changed(self, payment_hashes: Sequence[str]) -> None:
        """Called after transitions committed: drop their views and announce them (with any not yet announced).

        When Redis does not take the announcement, it is tried again in the background until it does:
        until then another process may still serve the old view, and its streams wait for the notice.
        """
        if self._hot is None:
            return
        batch = {**self._unannounced, **dict.fromkeys(payment_hashes)}
        try:
            await self._hot.invalidate_live_views(batch)
        except HotStoreUnavailable:
            for payment_hash in payment_hashes:
                self._unannounced[payment_hash] = None
            while len(self._unannounced) > MAX_UNANNOUNCED:
                self._unannounced.pop(next(iter(self._unannounced)))
            log.warning("live.change_not_announced", payments=len(payment_hashes), waiting=len(self._unannounced))
            if self._retrier is None or self._retrier.done():
                self._retrier = asyncio.create_task(self._announce_until_taken(), name="live-announce-retry")
            return
        for payment_hash in batch:
            self._unannounced.pop(payment_hash, None)

    async def announce_pending(self) -> None:
        """Announce the changes Redis missed while it was down (their views may have been cached before)."""
        if self._unannounced:
            await self.changed([])

    async def _announce_until_taken(self) -> None:
        delay = RETRY_MIN_SECONDS
        while self._unannounced:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            assert self._hot is not None
            batch = dict(self._unannounced)
            with contextlib.suppress(HotStoreUnavailable):
                await self._hot.invalidate_live_views(batch)
                for payment_hash in batch:
                    self._unannounced.pop(payment_hash, None)

    async def close(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
            self._retrier = None


class Watch:
    """One stream's interest in one payment: `wait` returns when the payment may have changed."""

    def __init__(self, feed: "LiveFeed", payment_hash: str) -> None:
        self.payment_hash = payment_hash
        self._feed = feed
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    def arm(self) -> None:
        """Call before reading the view: a notice that arrives during the read is not lost."""
        self._woken.clear()

    async def wait(self, poll_seconds: float, longest: float) -> None:
        """Until a notice (or a change of the feed's state) arrives; every `poll_seconds` while the feed is down."""
        timeout = longest if self._feed.live else min(poll_seconds, longest)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await self._woken.wait()


class LiveFeed:
    """One pub/sub subscription to the change channel per process, fanned out to the streams watching."""

    def __init__(self, hot: HotStore | None, on_resubscribed: Callable[[], Awaitable[None]] | None = None) -> None:
        self._hot = hot
        self._on_resubscribed = on_resubscribed
        self._watches: dict[str, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self.live = False
        self.notices = 0

    @contextlib.asynccontextmanager
    async def watch(self, payment_hash: str) -> AsyncIterator[Watch]:
        """Register a stream's interest in a payment for as long as the block runs."""
        self._start()
        watch = Watch(self, payment_hash)
        self._watches.setdefault(payment_hash, set()).add(watch)
        try:
            yield watch
        finally:
            watchers = self._watches.get(payment_hash)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[payment_hash]

    @property
    def watching(self) -> int:
        return sum(len(watches) for watches in self._watches.values())

    def _start(self) -> None:
        if self._hot is not None and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._listen_forever(), name="live-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_live(False)

    def _wake(self, payment_hashes: Iterable[str]) -> None:
        for payment_hash in payment_hashes:
            for watch in self._watches.get(payment_hash, ()):
                watch.wake()

    def _set_live(self, live: bool) -> None:
        """Every stream re-reads once when the feed comes or goes: it may have missed a notice, or must poll now."""
        if live != self.live:
            self.live = live
            log.info("live.feed_subscribed" if live else "live.feed_lost")
            self._wake(list(self._watches))

    async def _listen_forever(self) -> None:
        assert self._hot is not None
        delay = RETRY_MIN_SECONDS
        while True:
            try:
                async with self._hot.subscribe_changes() as pubsub:
                    self._set_live(True)
                    delay = RETRY_MIN_SECONDS
                    if self._on_resubscribed is not None:
                        with contextlib.suppress(HotStoreUnavailable):
                            await self._on_resubscribed()
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_TIMEOUT_SECONDS)
                        if message is not None and message.get("type") == "message":
                            self.notices += 1
                            self._wake([str(message["data"])])
            except SUBSCRIPTION_ERRORS as exc:
                if self.live:
                    log.warning("live.subscription_lost", error=type(exc).__name__)
            self._set_live(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)


__all__ = ["LiveFeed", "LiveViews", "Watch", "view_ttl_ms"]
