"""Redis: the cache of active payments, the processing locks, rate limits and the stats cache.

Nothing here is the record of a payment. Every method fails fast with one
`HotStoreUnavailable` when Redis does not answer (short socket timeouts, no
client-side retries), and after a failure Redis is left alone for a moment
instead of making every request wait for a dead server; the next call after
that moment tries again on a fresh connection.

The same code runs on one server, on a Redis Cluster and behind Sentinel
(store/redis_client.py builds the client). For the cluster, every script and
multi-key command touches keys of one hash slot only: a payment's keys carry
its hash as hash tag (`tip:{<hash>}`, `lock:payment:{<hash>}`,
`live:view:{<hash>}`, `live:generation:{<hash>}`), a budget's window and
block share `{budget:<bucket>}`, and what spans several payments or stats
keys is sent as one command per slot (pipelined together, so still one round
trip on a single server). Change notices use classic pub/sub, which a cluster
delivers to subscribers on every node.
"""

import asyncio
import contextlib
import functools
import hashlib
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar

import redis.asyncio.client
import redis.exceptions
import structlog
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tipsplit.settings import Settings
from tipsplit.store.autopipeline import AutoPipeline
from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.redis_client import connect_redis

log = structlog.get_logger(__name__)

T = TypeVar("T")

REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A cluster whose slot is between a failed master and its promoted replica, or being resharded.
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    OSError,
    TimeoutError,
)
# Learning a cluster's layout fails with these too when no node answers for every slot.
SUBSCRIBE_ERRORS: tuple[type[BaseException], ...] = (*REDIS_DOWN_ERRORS, redis.exceptions.RedisClusterException)
DEFAULT_TIP_TTL_SECONDS = 24 * 3600

# Delete or extend a lock (KEYS[1]) only if it still holds the caller's token. Releasing also deletes any
# further keys given (KEYS[2..]: a finished payment's cache, in the lock's slot), in the same round trip.
RELEASE_LOCK = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then released = redis.call('DEL', KEYS[1]) end
if #KEYS > 1 then redis.call('DEL', unpack(KEYS, 2)) end
return released
"""
EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Sliding window: drop hits older than the window, count, admit or say when the oldest hit leaves.
# With a second key, a block recorded there (its remaining TTL) refuses first.
SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if #KEYS > 1 then
  local blocked = redis.call('PTTL', KEYS[2])
  if blocked > 0 then return {0, 0, blocked} end
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""

# A payment's live view (KEYS[1]) is written only if its generation (KEYS[2]) is still the one read before
# PostgreSQL was: a transition committed meanwhile has moved the generation on, and its view must not be
# overwritten by an older read.
PUT_LIVE_VIEW = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
# After a committed transition of one payment (KEYS: its view and generation, one slot; ARGV[3]: its hash) move
# the generation on, drop the view, and publish the hash on the change channel (ARGV[1]), all at once.
INVALIDATE_LIVE_VIEW = """
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[3])
return 1
"""
# A generation outlives any read that could still be under way (a PostgreSQL read is bounded by its timeout).
LIVE_GENERATION_TTL_MS = 25 * 3600 * 1000

_SCRIPT_SHAS = {
    source: hashlib.sha1(source.encode()).hexdigest()
    for source in (RELEASE_LOCK, EXTEND_LOCK, SLIDING_WINDOW, PUT_LIVE_VIEW, INVALIDATE_LIVE_VIEW)
}


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """Whether one more request fits in the window, and if not, after how many seconds it will."""

    allowed: bool
    remaining: int
    retry_after: int


def slot_tag(name: str) -> str:
    """`name` as a Redis Cluster hash tag: keys holding the same tag live in one slot (and one script may use them)."""
    return "{" + name + "}"


async def if_up(hot: "HotStore | None", operation: Callable[["HotStore"], Awaitable[T]]) -> T | None:
    """Run a Redis operation when Redis is configured and answering; None otherwise.

    Redis is never required: callers whose record is PostgreSQL (locks, caches,
    shared answers) go on without it.
    """
    if hot is None:
        return None
    try:
        return await operation(hot)
    except HotStoreUnavailable:
        return None


class HotStore:
    """Typed access to the Redis keys of tipsplit, all under one configurable prefix."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        tls: bool = False,
        sentinel_password: str | None = None,
        prefix: str = "",
        socket_timeout: float = 1.0,
        retry_after_seconds: float = 1.0,
        lock_ttl_seconds: int = 300,
        stats_ttl_seconds: int = 3600,
    ) -> None:
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 15,
            "decode_responses": True,
        }
        auth: dict[str, Any] = {"password": password, "tls": tls, "sentinel_password": sentinel_password}
        self._client = connect_redis(url, **auth, **options)
        self.prefix = prefix
        self._operation_timeout = socket_timeout * 2
        self._retry_after = retry_after_seconds
        self._down_until = 0.0
        self._down = False
        self.lock_ttl_seconds = lock_ttl_seconds
        self.stats_ttl_seconds = stats_ttl_seconds
        self._pipeline = AutoPipeline(self._client)
        # Pub/sub holds its connection open and idle for as long as it listens, so it gets a client of its own
        # without a read timeout (a dead server shows as a closed connection or a failed health-check PING).
        subscriber_options = {**options, "socket_timeout": None, "socket_keepalive": True}
        self._connect_subscriber = functools.partial(connect_redis, url, **auth, **subscriber_options)
        self._subscriber = self._connect_subscriber()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "HotStore":
        """The hot store described by REDIS_URL (or REDIS_SENTINELS), REDIS_PASSWORD, REDIS_TLS and the key prefix."""
        if not settings.redis_url:
            raise ValueError("REDIS_URL is not set")
        return cls(
            settings.redis_url,
            password=settings.redis_password,
            tls=settings.redis_tls,
            sentinel_password=settings.redis_sentinel_password,
            prefix=settings.redis_key_prefix,
            lock_ttl_seconds=settings.lock_ttl_seconds,
            stats_ttl_seconds=settings.stats_ttl_seconds,
            **options,
        )

    def key(self, *parts: str) -> str:
        """A full key name: the prefix, then the parts joined by ':'."""
        return self.prefix + ":".join(parts)

    @property
    def available(self) -> bool:
        """False while Redis is being left alone after a failure."""
        return time.monotonic() >= self._down_until

    async def close(self) -> None:
        await self._client.aclose()
        await self._subscriber.aclose()

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        if not self.available:
            raise HotStoreUnavailable("Redis is unavailable (waiting before the next try)")
        try:
            async with asyncio.timeout(self._operation_timeout):
                result = await operation()
        except AttributeError as exc:
            # redis-py's cluster client can lose a connection's writer to another task's disconnect mid-command
            # (redis/redis-py#3546): the connection is gone, as with a ConnectionError.
            if "writelines" not in str(exc):
                raise
            raise self._went_down(exc) from exc
        except REDIS_DOWN_ERRORS as exc:
            raise self._went_down(exc) from exc
        if self._down:
            self._down = False
            log.info("redis.available")
        return result

    def _went_down(self, exc: BaseException) -> HotStoreUnavailable:
        """Leave Redis alone for a moment after a failure, logging it once; the error to raise."""
        self._down_until = time.monotonic() + self._retry_after
        if not self._down:
            self._down = True
            log.warning("redis.unavailable", error=f"{type(exc).__name__}: {exc}")
        return HotStoreUnavailable(f"Redis is unavailable: {type(exc).__name__}")

    async def _command(self, *args: Any) -> Any:
        """One command, sent in the pipeline of whatever else this event-loop turn sends."""
        return await self._run(lambda: self._pipeline.execute(*args))

    async def _script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its SHA1, sending its source instead where this Redis (or cluster node) lacks it.

        EVAL goes to the node of the keys, as EVALSHA does, and leaves the script cached there.
        """
        sha = _SCRIPT_SHAS[source]
        try:
            return await self._command("EVALSHA", sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await self._command("EVAL", source, len(keys), *keys, *args)

    async def ping(self) -> None:
        """Round-trip to Redis; raises HotStoreUnavailable when it does not answer."""
        await self._run(lambda: self._client.ping())

    # -- tip data -----------------------------------------------------------

    async def store_tip(self, payment_hash: str, payload: Mapping[str, Any], expires_at: datetime | None) -> bool:
        """Cache a payment until its invoice expires (24 h when unknown); False if it has already expired.

        The payload must already hold the API key encrypted: Redis never sees it in clear.
        """
        ttl_ms = self._ttl_ms(expires_at)
        key = self.tip_key(payment_hash)
        if ttl_ms <= 0:
            await self._command("DEL", key)
            return False
        await self._command("SET", key, json.dumps(payload, separators=(",", ":")), "PX", ttl_ms)
        return True

    async def get_tip(self, payment_hash: str) -> dict[str, Any] | None:
        """The cached payload (API key still encrypted), or None."""
        body = await self._command("GET", self.tip_key(payment_hash))
        return json.loads(body) if body is not None else None

    async def delete_tip(self, payment_hash: str) -> None:
        await self._command("DEL", self.tip_key(payment_hash))

    def tip_key(self, payment_hash: str) -> str:
        """`tip:{<hash>}`: the payment's hash is its keys' hash tag, so its lock, cache and views share one slot."""
        return self.key("tip", slot_tag(payment_hash))

    def lock_key(self, payment_hash: str) -> str:
        return self.key("lock", "payment", slot_tag(payment_hash))

    @staticmethod
    def _ttl_ms(expires_at: datetime | None) -> int:
        if expires_at is None:
            return DEFAULT_TIP_TTL_SECONDS * 1000
        return math.floor((expires_at - datetime.now(UTC)).total_seconds() * 1000)

    # -- live payment views and change notices ------------------------------

    @property
    def change_channel(self) -> str:
        """The pub/sub channel on which each committed payment change is announced (the message: its hash)."""
        return self.key("live", "changes")

    def _live_keys(self, payment_hash: str) -> list[str]:
        tag = slot_tag(payment_hash)
        return [self.key("live", "view", tag), self.key("live", "generation", tag)]

    async def get_live_view(self, payment_hash: str) -> tuple[str | None, str]:
        """`live:view:{<hash>}` (None on a miss) and the view's generation, to hand back to `put_live_view`."""
        body, generation = await self._command("MGET", *self._live_keys(payment_hash))
        return body, generation or "0"

    async def put_live_view(self, payment_hash: str, generation: str, body: str, ttl_ms: int) -> bool:
        """Cache a view read from PostgreSQL, unless a transition was announced since `generation` was read."""
        if ttl_ms <= 0:
            return False
        return bool(await self._script(PUT_LIVE_VIEW, self._live_keys(payment_hash), [generation, body, ttl_ms]))

    async def invalidate_live_views(self, payment_hashes: Iterable[str]) -> None:
        """Drop the views of changed payments, so no older read can be cached again, and announce the changes.

        One script per payment (each payment's keys share a slot), all sent in one pipeline; any failure raises
        after the others were sent, and invalidating a payment twice is harmless, so the caller retries them all.
        """
        await self._all(
            self._script(
                INVALIDATE_LIVE_VIEW, self._live_keys(payment_hash),
                [self.change_channel, LIVE_GENERATION_TTL_MS, payment_hash],
            )
            for payment_hash in payment_hashes
        )

    @staticmethod
    async def _all(operations: Iterable[Awaitable[Any]]) -> list[Any]:
        """Await commands issued together (one pipeline), then raise the first failure, if any, once all are done."""
        results = await asyncio.gather(*operations, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    @contextlib.asynccontextmanager
    async def subscribe_changes(self) -> AsyncIterator["redis.asyncio.client.PubSub"]:
        """A pub/sub connection subscribed to the change channel; raises HotStoreUnavailable if it cannot be.

        On a cluster the subscription is classic pub/sub on the node of the channel's slot (a cluster passes
        every message to every node); the subscriber client learns the cluster's layout first, and after a
        lost subscription starts over with a new client, which learns it again (a failover may have moved it).
        """
        if isinstance(self._subscriber, RedisCluster):
            try:
                await self._subscriber.initialize()
            except SUBSCRIBE_ERRORS as exc:
                await self._renew_subscriber()
                raise HotStoreUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc
        pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        lost = True
        try:
            try:
                await pubsub.subscribe(self.change_channel)
            except REDIS_DOWN_ERRORS as exc:
                raise HotStoreUnavailable(f"Redis is unavailable: {type(exc).__name__}") from exc
            yield pubsub
            lost = False
        finally:
            with contextlib.suppress(*REDIS_DOWN_ERRORS, redis.exceptions.RedisError):
                await pubsub.aclose()
            if lost and isinstance(self._subscriber, RedisCluster):
                await self._renew_subscriber()

    async def _renew_subscriber(self) -> None:
        old, self._subscriber = self._subscriber, self._connect_subscriber()
        with contextlib.suppress(*REDIS_DOWN_ERRORS, redis.exceptions.RedisError):
            await old.aclose()

    # -- processing locks ---------------------------------------------------

    async def acquire_lock(self, payment_hash: str, ttl_seconds: float | None = None) -> str | None:
        """Take `lock:payment:{<hash>}` for a while; returns the holder's token, or None if someone has it."""
        token = secrets.token_hex(16)
        ttl_ms = int((ttl_seconds or self.lock_ttl_seconds) * 1000)
        acquired = await self._command("SET", self.lock_key(payment_hash), token, "NX", "PX", ttl_ms)
        return token if acquired else None

    async def release_lock(self, payment_hash: str, token: str) -> bool:
        """Delete the lock only if it still holds `token` (an expired lock may belong to someone else now)."""
        return bool(await self._script(RELEASE_LOCK, [self.lock_key(payment_hash)], [token]))

    async def extend_lock(self, payment_hash: str, token: str, ttl_seconds: float | None = None) -> bool:
        """Push the lock's expiry out, only for its holder."""
        ttl_ms = int((ttl_seconds or self.lock_ttl_seconds) * 1000)
        return bool(await self._script(EXTEND_LOCK, [self.lock_key(payment_hash)], [token, ttl_ms]))

    # -- rate limits --------------------------------------------------------

    async def hit_rate_limit(
        self, scope: Literal["user", "ip"], identity: str, limit: int, window_seconds: int, action: str = "invoice"
    ) -> RateLimitResult:
        """Count one request against `ratelimit:{scope}:{identity}:{action}` (rolling window)."""
        key = self.key("ratelimit", scope, identity, action)
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        allowed, remaining, retry_ms = await self._script(SLIDING_WINDOW, [key], [limit, window_seconds * 1000, member])
        retry_after = max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0
        return RateLimitResult(bool(allowed), int(remaining), retry_after)

    # -- Blink invoice budgets ----------------------------------------------

    def _budget_keys(self, bucket: str) -> list[str]:
        """The window and block keys of a budget, hash-tagged into one Redis Cluster slot."""
        return [self.key("{budget:" + bucket + "}", "window"), self.key("{budget:" + bucket + "}", "blocked")]

    async def take_budget(self, bucket: str, points: int, window_seconds: float) -> RateLimitResult:
        """Spend one point of a shared budget unless it is used up or blocked; otherwise say when it returns."""
        member = f"{time.time_ns()}-{secrets.token_hex(4)}"
        allowed, remaining, retry_ms = await self._script(
            SLIDING_WINDOW, self._budget_keys(bucket), [points, int(window_seconds * 1000), member]
        )
        return RateLimitResult(bool(allowed), int(remaining), 0 if allowed else max(1, math.ceil(int(retry_ms) / 1000)))

    async def block_budget(self, bucket: str, seconds: float) -> None:
        """Refuse the budget for `seconds`: Blink blocked the account behind it."""
        await self._command("SET", self._budget_keys(bucket)[1], "1", "PX", max(1, int(seconds * 1000)))

    async def budget_state(self, bucket: str, window_seconds: float) -> tuple[int, int]:
        """Points spent in the current window, and milliseconds of block left (0 when not blocked)."""
        window_key, block_key = self._budget_keys(bucket)
        now_ms = int(time.time() * 1000)
        used = await self._command("ZCOUNT", window_key, now_ms - int(window_seconds * 1000), "+inf")
        blocked = await self._command("PTTL", block_key)
        return int(used), max(0, int(blocked))

    # -- recent settlement answers -------------------------------------------

    async def remember_answer(self, payment_hash: str, answer: str, ttl_ms: int) -> None:
        """Keep what settling a payment answered (e.g. "not paid"), so other instances reuse it for `ttl_ms`."""
        await self._command("SET", self.key("forward", "answer", payment_hash), answer, "PX", ttl_ms)

    async def recent_answer(self, payment_hash: str) -> str | None:
        answer: str | None = await self._command("GET", self.key("forward", "answer", payment_hash))
        return answer

    # -- operator sessions --------------------------------------------------

    async def put_operator_session(self, session_key: str, fingerprint: str, ttl_seconds: int) -> bool:
        """`opsession:{key}` holds a signed-in operator's token fingerprint until it expires or they sign out."""
        await self._command("SET", self.key("opsession", session_key), fingerprint, "EX", ttl_seconds)
        return True

    async def get_operator_session(self, session_key: str) -> str | None:
        value = await self._command("GET", self.key("opsession", session_key))
        return str(value) if value is not None else None

    async def delete_operator_session(self, session_key: str) -> None:
        await self._command("DEL", self.key("opsession", session_key))

    # -- stats cache --------------------------------------------------------

    async def get_daily_stats(self, day: date) -> dict[str, Any] | None:
        body = await self._command("GET", self.key("stats", "daily", day.isoformat()))
        return json.loads(body) if body is not None else None

    async def set_daily_stats(self, day: date, stats: Mapping[str, Any]) -> None:
        body = json.dumps(stats, separators=(",", ":"))
        await self._command("SET", self.key("stats", "daily", day.isoformat()), body, "EX", self.stats_ttl_seconds)

    async def get_recipient_stats(self, username: str) -> dict[str, Any] | None:
        body = await self._command("GET", self.key("stats", "recipient", username))
        return json.loads(body) if body is not None else None

    async def set_recipient_stats(self, username: str, stats: Mapping[str, Any]) -> None:
        body = json.dumps(stats, separators=(",", ":"))
        await self._command("SET", self.key("stats", "recipient", username), body, "EX", self.stats_ttl_seconds)

    async def forget_payment(
        self, payment_hash: str, day: date, usernames: Iterable[str], *, lock_token: str | None = None
    ) -> None:
        """Drop a finished payment's cache entry and the stats it made stale, in one round trip.

        With `lock_token`, the payment's processing lock is released in the same
        round trip (only if it still holds that token, as `release_lock` does).
        The stats keys live in other slots than the payment's, so each is
        deleted by a command of its own, pipelined with the rest.
        """
        stats = [self.key("stats", "daily", day.isoformat())] + [self.key("stats", "recipient", n) for n in usernames]
        payment = (
            self._command("DEL", self.tip_key(payment_hash))
            if lock_token is None
            else self._script(RELEASE_LOCK, [self.lock_key(payment_hash), self.tip_key(payment_hash)], [lock_token])
        )
        await self._all([payment, *(self._command("DEL", key) for key in stats)])
