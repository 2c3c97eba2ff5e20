"""Blink's invoice-creation budgets, shared by every tipsplit instance through Redis.

Blink lets each account create 60 invoices in 60 s on its own wallets, and
separately 60 that others create on its behalf, and blocks the account for
300 s once either is exceeded. A budget here is a sliding window kept a few
points below Blink's: at most `points - margin` creations in any window means
Blink's window, wherever it starts, never sees more than it allows. A block
that Blink reports anyway (budget spent by another client) is recorded so
that no instance asks again before it ends.

While Redis is down each process keeps the same window for itself.
"""

import math
import time
from collections import deque
from dataclasses import dataclass

import structlog

from tipsplit.store.errors import HotStoreUnavailable
from tipsplit.store.hot import HotStore, RateLimitResult

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BudgetPolicy:
    """Blink's limit for one kind of invoice creation, and how far below it tipsplit stays."""

    points: int = 60
    window_seconds: float = 60.0
    block_seconds: float = 300.0
    margin: int = 3

    @property
    def budget(self) -> int:
        return max(1, self.points - self.margin)


@dataclass(frozen=True)
class BudgetState:
    """What an operator sees of one budget: points spent in the window, the block left, the room left."""

    used: int
    blocked_seconds: int
    remaining: int


def own_invoices(account: str) -> str:
    """The bucket of invoices an account creates on its own wallets (every POS invoice)."""
    return f"own:{account}"


def invoices_for(recipient: str) -> str:
    """The bucket of invoices created on behalf of a recipient (every leg to that wallet)."""
    return f"for:{recipient}"


class InvoiceBudget:
    """Take a point before each invoice creation; a refusal says in how many seconds to try again."""

    def __init__(self, hot: HotStore | None, policy: BudgetPolicy) -> None:
        self._hot = hot
        self.policy = policy
        self._local: dict[str, deque[float]] = {}
        self._local_blocks: dict[str, float] = {}

    async def take(self, bucket: str) -> RateLimitResult:
        if self._hot is not None:
            try:
                return await self._hot.take_budget(bucket, self.policy.budget, self.policy.window_seconds)
            except HotStoreUnavailable:
                pass
        return self._take_locally(bucket)

    async def blocked_by_blink(self, bucket: str) -> None:
        """Blink refused a creation for this bucket's account: nobody asks again until its block is over."""
        log.warning("blink.invoice_budget_blocked", bucket=bucket, seconds=self.policy.block_seconds)
        self._local_blocks[bucket] = time.monotonic() + self.policy.block_seconds
        if self._hot is not None:
            try:
                await self._hot.block_budget(bucket, self.policy.block_seconds)
            except HotStoreUnavailable:
                pass

    async def state(self, bucket: str) -> BudgetState:
        """The budget as Redis holds it, or as this process keeps it while Redis is away."""
        try:
            if self._hot is None:
                raise HotStoreUnavailable("no Redis configured")
            used, blocked_ms = await self._hot.budget_state(bucket, self.policy.window_seconds)
        except HotStoreUnavailable:
            used = len(self._window(bucket))
            blocked_ms = math.ceil(max(0.0, self._local_blocks.get(bucket, 0.0) - time.monotonic()) * 1000)
        blocked = math.ceil(blocked_ms / 1000)
        return BudgetState(used, blocked, 0 if blocked else max(0, self.policy.budget - used))

    def _window(self, bucket: str) -> deque[float]:
        hits = self._local.setdefault(bucket, deque())
        horizon = time.monotonic() - self.policy.window_seconds
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def _take_locally(self, bucket: str) -> RateLimitResult:
        now = time.monotonic()
        block_end = self._local_blocks.get(bucket, 0.0)
        if block_end > now:
            return RateLimitResult(False, 0, max(1, math.ceil(block_end - now)))
        hits = self._window(bucket)
        if len(hits) < self.policy.budget:
            hits.append(now)
            return RateLimitResult(True, self.policy.budget - len(hits), 0)
        return RateLimitResult(False, 0, max(1, math.ceil(hits[0] + self.policy.window_seconds - now)))
