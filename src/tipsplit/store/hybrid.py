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
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from tipsplit.domain.models import TipData
from tipsplit.domain.records import Archived
from tipsplit.domain.states import PaymentStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.settings import Settings
from tipsplit.store.errors import (
    HotStoreUnavailable,
    InvalidTipData,
    PaymentStateError,
    StorageUnavailable,
)
from tipsplit.store.hot import HotStore, RateLimitResult, if_up
from tipsplit.store.intake import (
    ACTIVE_STATUSES,
    PaymentIntake,
    cache_view,
    check_hash,
    describe,
    number,
    view_of,
)
from tipsplit.store.journal import Journal
from tipsplit.store.legacy_file import FileTipStore
from tipsplit.store.live import LiveFeed, LiveViews
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.schema import apply_migrations

log = structlog.get_logger(__name__)


class HybridTipStore:
    """Where a payment split is remembered between invoice creation and forwarding (the seed's API).

    Closing it closes the `PostgresStore` it was built on, given or its own.
    """

    def __init__(
        self, settings: Settings, keyring: KeyRing, *, pg: PostgresStore | None = None, replay_interval: float = 5.0
    ) -> None:
        if not settings.database_url:
            raise ValueError("DATABASE_URL is not set: the hybrid store needs PostgreSQL")
        self.settings = settings
        self._keyring = keyring
        # The PostgreSQL store it is built on: the runtime's own, or one of its own for a standalone tool.
        self.pg = pg or PostgresStore.from_settings(settings)
        self.hot: HotStore | None = (
            HotStore.from_settings(settings) if settings.use_hybrid_storage and settings.redis_url else None
        )
        self.fallback = settings.fallback_to_file_storage
        self.journal: Journal | None = Journal(settings.journal_path) if self.fallback else None
        self.file_store: FileTipStore | None = FileTipStore(settings.tip_store_file, keyring) if self.fallback else None
        self.metrics = MetricsCollector(self.pg.reports)
        self.live = LiveViews(self.pg, self.hot, self.metrics)
        self.feed = LiveFeed(self.hot, on_resubscribed=self.live.announce_pending)
        if self.hot is not None:
            self.pg.change_listener = self.live.changed
        self.intake = PaymentIntake(self.pg, self.hot, keyring, self.journal, settings.max_memo_length)
        self.intake.before_replay = self._ensure_postgres
        self._replay_interval = replay_interval
        self._replayer: asyncio.Task[None] | None = None
        self._migrate = True
        self._migrated = False

    # -- life cycle ---------------------------------------------------------

    async def initialize(self, *, migrate: bool = True) -> None:
        """Connect (and migrate); with the file fallback on, PostgreSQL being down is survivable."""
        self._migrate = migrate
        try:
            await self._ensure_postgres()
        except StorageUnavailable:
            if not self.fallback:
                raise
            log.warning("store.postgres_unavailable_at_start", fallback="journal")
        if self.hot is not None:
            try:
                await self.hot.ping()
            except HotStoreUnavailable:
                log.warning("store.redis_unavailable_at_start", fallback="postgresql")
        self.metrics.start()
        if self.journal is not None:
            self._replayer = asyncio.create_task(self.intake.replay_forever(self._replay_interval), name="journal-replay")
        log.info("store.initialized", redis=self.hot is not None, fallback=self.fallback)

    async def close(self) -> None:
        """Stop background work, flush metrics, close the pools."""
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        await self.feed.close()
        await self.live.close()
        await self.metrics.stop()
        await self.pg.close()
        if self.hot is not None:
            await self.hot.close()

    async def _ensure_postgres(self) -> None:
        if self._migrate and not self._migrated:
            await asyncio.to_thread(apply_migrations, self.settings.database_url or "")
            self._migrated = True
        await self.pg.open()

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
        recipients = done.recipients if done else await self._already_finished(payment_hash, success)
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
        today = datetime.now(UTC).date()
        cached = await if_up(self.hot, lambda hot: hot.get_daily_stats(today))
        if cached is not None:
            self.metrics.record_cache_hit()
            return cached
        self.metrics.record_cache_miss()
        try:
            last_24h = await self.pg.reports.stats_24h()
        except StorageUnavailable:
            if not self.fallback:
                raise
            return await self._fallback_stats()
        leaders = await self.pg.reports.recipient_stats(limit=20)
        stats = {
            "last24Hours": last_24h,
            "recipients": [
                {
                    "username": r.recipient_username,
                    "totalTips": r.total_tips_received,
                    "count": r.total_tips_count,
                    "averageTip": float(r.average_tip_amount) if r.average_tip_amount is not None else None,
                    "lastTipAt": r.last_tip_received_at.isoformat() if r.last_tip_received_at else None,
                }
                for r in leaders
            ],
            "storage": "hybrid (Redis + PostgreSQL)" if self.hot is not None else "PostgreSQL",
            "generatedAt": datetime.now(UTC).isoformat(),
        }
        await if_up(self.hot, lambda hot: hot.set_daily_stats(today, stats))
        return stats

    async def get_recipient_stats(self, username: str) -> dict[str, Any] | None:
        """One recipient's lifetime tip totals, cached in Redis for an hour."""
        cached = await if_up(self.hot, lambda hot: hot.get_recipient_stats(username))
        if cached is not None:
            return cached
        found = await self.pg.reports.stats_for_recipient(username)
        if found is None:
            return None
        stats = {
            "username": found.recipient_username,
            "totalTipsReceived": found.total_tips_received,
            "totalTipsCount": found.total_tips_count,
            "averageTipAmount": number(found.average_tip_amount),
            "lastTipReceivedAt": found.last_tip_received_at.isoformat() if found.last_tip_received_at else None,
        }
        await if_up(self.hot, lambda hot: hot.set_recipient_stats(username, stats))
        return stats

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
        window = self.settings.rate_limit_window_seconds
        checks: list[tuple[Literal["user", "ip"], str | None, int]] = [
            ("user", wallet_id, self.settings.rate_limit_per_wallet),
            ("ip", ip, self.settings.rate_limit_per_ip),
        ]
        counted: list[RateLimitResult] = []
        for scope, identity, limit in checks:
            if not identity:
                continue
            count_hit = partial(HotStore.hit_rate_limit, scope=scope, identity=identity, limit=limit, window_seconds=window)
            result = await if_up(self.hot, count_hit)
            if result is None:
                continue
            if not result.allowed:
                return result
            counted.append(result)
        return min(counted, key=lambda r: r.remaining, default=RateLimitResult(True, -1, 0))

    async def check_forward_rate_limit(self, ip: str) -> RateLimitResult:
        """Count one settle-now request (forward-with-tips) per client IP; allowed when Redis is down (fail open)."""
        count_hit = partial(
            HotStore.hit_rate_limit, scope="ip", identity=ip, limit=self.settings.forward_rate_limit_per_ip,
            window_seconds=self.settings.forward_rate_limit_window_seconds, action="forward",
        )
        return await if_up(self.hot, count_hit) or RateLimitResult(True, -1, 0)

    async def check_login_limit(self, ip: str, limit: int, window_seconds: int) -> RateLimitResult:
        """Count one operator sign-in attempt of a client IP; allowed when Redis is down (fail open)."""
        count_hit = partial(
            HotStore.hit_rate_limit, scope="ip", identity=ip, limit=limit, window_seconds=window_seconds,
            action="operator-login",
        )
        return await if_up(self.hot, count_hit) or RateLimitResult(True, -1, 0)

    async def put_operator_session(self, session_key: str, fingerprint: str, ttl_seconds: int) -> bool:
        """Keep an operator session in Redis; False when Redis is off or down (no session can be kept)."""
        return bool(await if_up(self.hot, lambda hot: hot.put_operator_session(session_key, fingerprint, ttl_seconds)))

    async def get_operator_session(self, session_key: str) -> str | None:
        return await if_up(self.hot, lambda hot: hot.get_operator_session(session_key))

    async def delete_operator_session(self, session_key: str) -> None:
        await if_up(self.hot, lambda hot: hot.delete_operator_session(session_key))

    async def replay_journal(self) -> int:
        """Move journaled writes into PostgreSQL; safe to repeat (inserts are idempotent)."""
        return await self.intake.replay_journal()

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

    async def _already_finished(self, payment_hash: str, success: bool) -> tuple[str, ...]:
        """Accept a repeated remove; refuse one for a payment someone else is still working on.

        Returns the payment's tip recipients, read here anyway, for `_forget`.
        """
        payment = await self.pg.payments.get(payment_hash, with_legs=False)
        if payment is None:
            raise PaymentStateError(f"payment {payment_hash} is not stored")
        wanted = PaymentStatus.COMPLETED if success else PaymentStatus.FAILED
        if payment.status != wanted:
            raise PaymentStateError(
                f"payment {payment_hash} is {payment.status.value}"
                + (f" (claimed by {payment.claim_owner})" if payment.claim_owner else "")
                + f"; it cannot be marked {wanted.value} now"
            )
        return tuple(r.username for r in payment.tip_recipients)

    async def _from_fallback(self, payment_hash: str) -> dict[str, Any] | None:
        """Unreplayed journal records first (newest truth), then the legacy file store."""
        assert self.journal is not None and self.file_store is not None
        records = await asyncio.to_thread(self.journal.records)
        for record in reversed(records):
            if record.get("paymentHash") == payment_hash:
                return self._reveal(record["tip"])
        return await asyncio.to_thread(self.file_store.get, payment_hash)

    async def _fallback_stats(self) -> dict[str, Any]:
        assert self.journal is not None and self.file_store is not None
        return {
            "last24Hours": None,
            "storage": "degraded: PostgreSQL unavailable",
            "journalPending": await asyncio.to_thread(len, self.journal),
            "fileStore": await asyncio.to_thread(self.file_store.stats),
            "generatedAt": datetime.now(UTC).isoformat(),
        }


__all__ = ["HybridTipStore"]
