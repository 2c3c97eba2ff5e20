"""The seed's HybridTipStore, async and safe: PostgreSQL is the record, Redis a cache, files a fallback.

Writes commit to PostgreSQL first and only then warm Redis, so an
acknowledged payment survives losing every Redis key. Reads go Redis →
PostgreSQL (re-warming Redis) → the legacy file store. When PostgreSQL is
down and FALLBACK_TO_FILE_STORAGE is on, a write is acknowledged once it is
fsynced to the journal, which a background task replays into PostgreSQL
(idempotently) when it answers again.

It is an adapter offering the seed's API over a `PostgresStore` (store/postgres.py)
and Redis: it validates, seals the API key and shapes the seed's views, and leaves
every statement to the entity modules. The service reads and moves payments
through the `PostgresStore` parts themselves and creates them through
`PaymentIntake` (store/intake.py), the same unit `store_tip_data` uses; the legacy
import tool and the benchmarks use this API.
"""

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from tipsplit.domain.models import TipData
from tipsplit.domain.records import Archived
from tipsplit.domain.states import PaymentStatus, WalletCurrency
from tipsplit.store.errors import (
    InvalidTipData,
    PaymentStateError,
    StorageUnavailable,
)
from tipsplit.store.hot import RateLimitResult, if_up
from tipsplit.store.intake import (
    ACTIVE_STATUSES,
    cache_view,
    check_hash,
    describe,
    view_of,
)
from tipsplit.store.stack import StoreStack

log = structlog.get_logger(__name__)


class HybridTipStore(StoreStack):
    """Where a payment split is remembered between invoice creation and forwarding (the seed's API).

    The store's parts come from `StoreStack`; this class adds only the seed's
    calls, each a few lines over those parts.
    """

    # -- the seed's API -----------------------------------------------------

    async def store_tip_data(
        self,
        payment_hash: str,
        tip_data: Mapping[str, Any] | TipData,
        *,
        recipient_wallets: Mapping[str, str] | None = None,
        wallet_currencies: Mapping[str, WalletCurrency] | None = None,
        expires_at: datetime | None = None,
    ) -> bool:
        """Remember a new invoice's split; returns once it is durable (PostgreSQL, or the fsynced journal).

        `recipient_wallets` maps tip recipients to their wallet ids, `wallet_currencies` destination wallet ids
        (the merchant's too) to what they hold; a wallet not named there is a BTC wallet.

        True when this call stored it; False when the same split was already
        stored under this hash (a repeat). Another split under the hash raises
        PaymentConflict. A caller making a *new* sale must treat False as a conflict too.
        """
        payment_hash = check_hash(payment_hash)
        tip = self._validate(tip_data, expires_at)
        return await self.intake.create(
            payment_hash, tip, recipient_wallets=recipient_wallets, wallet_currencies=wallet_currencies
        )

    async def get_tip_data(self, payment_hash: str) -> dict[str, Any] | None:
        """The active payment's split in the seed's camelCase shape with the API key in clear, or None."""
        payment_hash = check_hash(payment_hash)
        cached = await self._cached(payment_hash)
        if cached is not None:
            self.metrics.record_cache_hit()
            return self._reveal(cached)
        self.metrics.record_cache_miss()
        try:
            payment = await self.pg.payments.get(payment_hash, with_legs=False)
        except StorageUnavailable:
            if not self.fallback:
                raise
            return await self._from_fallback(payment_hash)
        if payment is not None:
            if payment.status not in ACTIVE_STATUSES:
                return None
            view = view_of(payment)
            await cache_view(self.hot, payment_hash, view)
            return self._reveal(view)
        return await self._from_fallback(payment_hash) if self.fallback else None

    async def remove_tip_data(
        self, payment_hash: str, result: Mapping[str, Any], *, owner: str | None = None, lock_token: str | None = None
    ) -> None:
        """Archive a settled payment (completed or failed) in one transaction, then drop it from Redis.

        The caller names its claim with `owner` (or `result["owner"]`); without
        one the store claims the payment itself, which fails if another worker
        holds it. Repeating a remove that already happened is harmless. With
        `lock_token` the caller's Redis lock is released in the same round trip
        that drops the cache entry.
        """
        payment_hash = check_hash(payment_hash)
        success = bool(result.get("success"))
        done = await self._archive(payment_hash, result, success, owner or result.get("owner"))
        recipients = done.recipients if done else await self.pg.outcomes.archived_as(
            payment_hash, PaymentStatus.COMPLETED if success else PaymentStatus.FAILED
        )
        await self._forget(payment_hash, recipients, lock_token)

    async def _archive(
        self, payment_hash: str, result: Mapping[str, Any], success: bool, owner: str | None
    ) -> Archived | None:
        """Mark the payment completed or failed in PostgreSQL; None when nothing changed (finished, or held elsewhere).

        Without `owner` a failure is one statement (`fail_unclaimed`); a completion
        claims first, because completing checks the legs under the claim.
        """
        error = str(result.get("error") or "settlement failed")
        if owner is not None:
            if success:
                return await self.pg.outcomes.complete(payment_hash, owner, result)
            return await self.pg.outcomes.fail(payment_hash, owner, error)
        owner = f"remove-{uuid.uuid4().hex[:12]}"
        if not success:
            return await self.pg.outcomes.fail_unclaimed(payment_hash, owner, error)
        claimed = await self.pg.claims.claim(
            payment_hash, owner, self.settings.claim_lease_seconds, allow_failed=True, details=False
        )
        if claimed is None:
            return None
        try:
            return await self.pg.outcomes.complete(payment_hash, owner, result)
        except PaymentStateError:
            await self.pg.claims.release(
                payment_hash, owner, PaymentStatus.PENDING, "remove_refused", {"reason": "legs not settled"}
            )
            raise

    async def get_stats(self) -> dict[str, Any]:
        """Last-24-hours numbers, from the Redis stats cache (1 h) or PostgreSQL on a miss."""
        return await self.stats.get_stats()

    async def get_recipient_stats(self, username: str) -> dict[str, Any] | None:
        """One recipient's lifetime tip totals, cached in Redis for an hour."""
        return await self.stats.get_recipient_stats(username)

    # -- pass-throughs for the API, the legacy import and the benchmarks ---

    async def acquire_lock(self, payment_hash: str) -> str | None:
        """A Redis lock token, or None if it is held or Redis is down (the PostgreSQL claim still guards)."""
        return await if_up(self.hot, lambda hot: hot.acquire_lock(payment_hash))

    async def release_lock(self, payment_hash: str, token: str) -> None:
        await if_up(self.hot, lambda hot: hot.release_lock(payment_hash, token))

    async def forget_hot(self, payment_hash: str) -> None:
        """Drop a payment's cache entry (e.g. once it expired)."""
        await if_up(self.hot, lambda hot: hot.delete_tip(payment_hash))

    async def check_rate_limit(self, *, wallet_id: str | None = None, ip: str | None = None) -> RateLimitResult:
        """Count one invoice request per wallet and per IP; allowed when Redis is down (fail open)."""
        return await self.edge.check_rate_limit(wallet_id=wallet_id, ip=ip)

    # -- internals ----------------------------------------------------------

    def _validate(self, tip_data: Mapping[str, Any] | TipData, expires_at: datetime | None) -> TipData:
        """Typed, checked tip data with its creation and expiry times fixed."""
        if isinstance(tip_data, TipData):
            tip = tip_data
        else:
            try:
                tip = TipData.model_validate(dict(tip_data))
            except ValidationError as exc:
                raise InvalidTipData(f"invalid tip data: {describe(exc)}") from None
            for field in ("totalAmount", "amount"):
                given = tip_data.get(field)
                if given is not None and given != tip.total_amount:
                    raise InvalidTipData(
                        f"invalid tip data: {field} {given} is not baseAmount + tipAmount ({tip.total_amount})"
                    )
        created_at = tip.created_at or datetime.now(UTC)
        expiry = expires_at or tip.expires_at or created_at + timedelta(minutes=self.settings.invoice_expiry_minutes)
        return tip.model_copy(update={"created_at": created_at, "expires_at": expiry})

    def _reveal(self, view: Mapping[str, Any]) -> dict[str, Any]:
        revealed = dict(view)
        revealed["userApiKey"] = self._keyring.decrypt(view["userApiKey"])
        return revealed

    async def _cached(self, payment_hash: str) -> dict[str, Any] | None:
        return await if_up(self.hot, lambda hot: hot.get_tip(payment_hash))

    async def _forget(self, payment_hash: str, usernames: Sequence[str], lock_token: str | None = None) -> None:
        """After a payment is archived: drop its cache entry, the stale stats (today's, and those of
        `usernames`, its tip recipients), its legacy file entry, and the caller's lock if it names one."""
        today = datetime.now(UTC).date()
        await if_up(self.hot, lambda hot: hot.forget_payment(payment_hash, today, usernames, lock_token=lock_token))
        if self.file_store is not None:
            await asyncio.to_thread(self.file_store.remove, payment_hash)

    async def _from_fallback(self, payment_hash: str) -> dict[str, Any] | None:
        """Unreplayed journal records first (newest truth), then the legacy file store."""
        assert self.journal is not None and self.file_store is not None
        records = await asyncio.to_thread(self.journal.records)
        for record in reversed(records):
            if record.get("paymentHash") == payment_hash:
                return self._reveal(record["tip"])
        return await asyncio.to_thread(self.file_store.get, payment_hash)


__all__ = ["HybridTipStore"]
