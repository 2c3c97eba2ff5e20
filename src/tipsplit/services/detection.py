"""The server-side detection paths: nothing waits on a browser.

A payment reaches `settle` from the webhook, from the `myUpdates`
subscription of each POS account, from a poller over pending invoices (the
backstop when both miss an event), and from the reconciler, which takes up
claims whose lease ran out: crashed instances, unresolved sends, failed legs
due for a retry. Every path may fire for the same payment: settle is idempotent.
A failed payment is final: no path here takes it up again (an operator's
retry, `operator_retry.py`, does).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog

from tipsplit.blink.types import InvoiceStatus
from tipsplit.blink.updates import MyUpdates
from tipsplit.observability import RECONCILER_BACKLOG
from tipsplit.services.pos_accounts import PosAccounts
from tipsplit.services.settlement import Settler
from tipsplit.store.claims import Claims

log = structlog.get_logger(__name__)

BATCH = 100
DEFAULT_CONCURRENCY = 8


class Watchers:
    """Owns the background tasks that feed `settle`, and de-duplicates work inside this process.

    At most `concurrency` payments are settled at once (Settings.settlements_at_once in the service).
    """

    def __init__(
        self,
        settler: Settler,
        claims: Claims,
        accounts: PosAccounts,
        poll_interval: float,
        reconcile_interval: float,
        updates: Sequence[MyUpdates],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._settler = settler
        self._claims = claims
        self._scope = accounts.scope
        self._pos_wallet_ids = frozenset(account.wallet_id for account in accounts.all)
        self._poll_interval = poll_interval
        self._reconcile_interval = reconcile_interval
        self._updates = tuple(updates)
        self._running: set[str] = set()
        self._poll_cursor: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(concurrency)

    def trigger(self, payment_hash: str, *, blink_said_paid: bool = False) -> None:
        """Settle in the background; a hash already being settled here is not started twice.

        `blink_said_paid` only for Blink's own word that the POS invoice is PAID (see `Settler.settle`).
        """
        if payment_hash in self._running:
            return
        self._running.add(payment_hash)
        self._spawn(self._settle(payment_hash, blink_said_paid=blink_said_paid))

    async def _settle(self, payment_hash: str, *, blink_said_paid: bool = False) -> None:
        try:
            async with self._gate:
                await self._settler.settle(payment_hash, blink_said_paid=blink_said_paid)
        except Exception:
            log.exception("settlement.crashed", payment_hash=payment_hash)
        finally:
            self._running.discard(payment_hash)

    def start(self) -> None:
        self._spawn(self._every(self._poll_interval, self.poll_once))
        self._spawn(self._every(self._reconcile_interval, self.reconcile_once))
        for updates in self._updates:
            self._spawn(self._listen(updates))

    async def stop(self) -> None:
        for updates in self._updates:
            await updates.aclose()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def poll_once(self) -> int:
        """Ask Blink about the next page of pending invoices; every one is reached in turn."""
        hashes = await self._claims.pending(BATCH, after=self._poll_cursor, accounts=self._scope)
        self._poll_cursor = hashes[-1] if len(hashes) == BATCH else None
        await self._run_all(hashes)
        return len(hashes)

    async def reconcile_once(self) -> int:
        """Resume payments whose claim lease ran out."""
        hashes = await self._claims.stale(BATCH, accounts=self._scope)
        RECONCILER_BACKLOG.set(len(hashes))
        await self._run_all(hashes)
        return len(hashes)

    async def _run_all(self, hashes: list[str]) -> None:
        fresh = [h for h in hashes if h not in self._running]
        self._running.update(fresh)
        await asyncio.gather(*(self._settle(h) for h in fresh))

    async def _listen(self, updates: MyUpdates) -> None:
        async for update in updates:
            if update.wallet_id in self._pos_wallet_ids and update.status is InvoiceStatus.PAID:
                self.trigger(update.payment_hash, blink_said_paid=True)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[int]]) -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("watcher.failed", job=getattr(job, "__name__", "job"))
            await asyncio.sleep(seconds)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
