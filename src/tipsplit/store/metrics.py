"""System metrics written to PostgreSQL in batches, off the request path.

The seed inserted one row per cache hit, a database write on every read.
Here recording is a list append; cache hits and misses are counted and
written as one row per flush; a background task writes everything in one
statement every few seconds or as soon as a batch is full. While PostgreSQL
is down samples wait in a bounded buffer and the oldest are dropped first.
"""

import asyncio
import contextlib
from collections import deque
from datetime import UTC, datetime
from typing import Any

import structlog

from tipsplit.domain.records import MetricSample
from tipsplit.observability import CACHE_LOOKUPS
from tipsplit.store.reports import Reports
from tipsplit.store.errors import StorageUnavailable

log = structlog.get_logger(__name__)

CACHE_HIT = "redis_cache_hit"
CACHE_MISS = "redis_cache_miss"
PROCESSING_TIME = "payment_processing_time"


class MetricsCollector:
    """Buffers (name, value, unit, metadata) samples and writes them to system_metrics in batches."""

    def __init__(
        self, reports: Reports, *, flush_interval: float = 5.0, batch_size: int = 500, max_buffer: int = 10_000
    ) -> None:
        self._reports = reports
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._buffer: deque[MetricSample] = deque(maxlen=max_buffer)
        self._counters: dict[str, int] = {CACHE_HIT: 0, CACHE_MISS: 0}
        self._flush_lock = asyncio.Lock()
        self._batch_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Samples waiting to be written (counters not included)."""
        return len(self._buffer)

    def record(self, name: str, value: float, unit: str = "count", metadata: dict[str, Any] | None = None) -> None:
        """Queue one sample; never waits for PostgreSQL."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(MetricSample(name, value, unit, metadata, datetime.now(UTC)))
        if len(self._buffer) >= self._batch_size:
            self._batch_ready.set()

    def record_cache_hit(self) -> None:
        self._counters[CACHE_HIT] += 1
        CACHE_LOOKUPS.labels(result="hit").inc()

    def record_cache_miss(self) -> None:
        self._counters[CACHE_MISS] += 1
        CACHE_LOOKUPS.labels(result="miss").inc()

    def record_processing_time(self, payment_hash: str, duration_ms: float) -> None:
        """How long a settlement took; only a hash prefix is kept, as in the seed."""
        self.record(PROCESSING_TIME, duration_ms, "ms", {"paymentHash": payment_hash[:8]})

    async def flush(self) -> int:
        """Write everything buffered now, one INSERT per batch; returns how many rows were written."""
        async with self._flush_lock:
            self._take_counters()
            written = 0
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                try:
                    written += await self._reports.insert_metrics(batch)
                except StorageUnavailable as exc:
                    self._requeue(batch)
                    log.warning("metrics.flush_deferred", waiting=len(self._buffer), error=str(exc))
                    break
            return written

    def _take_counters(self) -> None:
        now = datetime.now(UTC)
        for name, count in self._counters.items():
            if count:
                self._buffer.append(MetricSample(name, count, "count", None, now))
                self._counters[name] = 0

    def _requeue(self, batch: list[MetricSample]) -> None:
        room = (self._buffer.maxlen or 0) - len(self._buffer)
        kept = batch[-room:] if room > 0 else []
        self.dropped += len(batch) - len(kept)
        self._buffer.extendleft(reversed(kept))

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="metrics-flusher")

    async def stop(self) -> None:
        """Stop the flusher and write what is left (best effort)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(StorageUnavailable):
            await self.flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval):
                    await self._batch_ready.wait()
            self._batch_ready.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("metrics.flush_failed")
