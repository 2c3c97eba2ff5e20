"""The store as a running tipsplit opens it: PostgreSQL, Redis, the journal, live views and metrics, together.

One object starts and stops them in order (migrate, connect, warm nothing,
start the metrics flusher and the journal replay) and hands out the parts;
every statement and command lives in the part's own module.
"""

import asyncio
import contextlib

import structlog

from tipsplit.keyring import KeyRing
from tipsplit.settings import Settings
from tipsplit.store.edge import EdgeCounters
from tipsplit.store.errors import HotStoreUnavailable, StorageUnavailable
from tipsplit.store.hot import HotStore
from tipsplit.store.intake import PaymentIntake
from tipsplit.store.journal import Journal
from tipsplit.store.legacy_file import FileTipStore
from tipsplit.store.live import LiveFeed, LiveViews
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.schema import apply_migrations
from tipsplit.store.stats import StatsCache

log = structlog.get_logger(__name__)


class StoreStack:
    """PostgreSQL (`pg`), Redis (`hot`), the journal and legacy file, and what is built on them.

    Closing it closes the `PostgresStore` it was built on, given or its own.
    """

    def __init__(
        self, settings: Settings, keyring: KeyRing, *, pg: PostgresStore | None = None, replay_interval: float = 5.0
    ) -> None:
        if not settings.database_url:
            raise ValueError("DATABASE_URL is not set: the store needs PostgreSQL")
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
        self.stats = StatsCache(
            self.pg.reports, self.hot, self.metrics, journal=self.journal, file_store=self.file_store
        )
        self.edge = EdgeCounters(self.hot, settings)
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

    async def replay_journal(self) -> int:
        """Move journaled writes into PostgreSQL; safe to repeat (inserts are idempotent)."""
        return await self.intake.replay_journal()
