"""PostgreSQL, the source of truth: one `Database` and one repository per entity on it.

`PostgresStore` is what the service holds: `pg.payments`, `pg.claims`,
`pg.legs`, `pg.events`, `pg.outcomes`, `pg.reports`, `pg.api_keys`,
`pg.tills`. Each part is the one place its table's statements live; they
share the pool, and their methods share a transaction when given one `conn`.
"""

from typing import Any

from tipsplit.domain.retry import RetryPolicy
from tipsplit.settings import Settings
from tipsplit.store.api_keys import ApiKeys
from tipsplit.store.changes import ChangeListener
from tipsplit.store.claims import Claims
from tipsplit.store.database import Database
from tipsplit.store.events import Events
from tipsplit.store.legs import Legs
from tipsplit.store.outcomes import Outcomes
from tipsplit.store.payments import Payments
from tipsplit.store.reports import Reports
from tipsplit.store.tills import TillStore


class PostgresStore:
    """The PostgreSQL side of the store: the pool and the entity repositories on it."""

    def __init__(self, db: Database, *, retry: RetryPolicy | None = None) -> None:
        self.db = db
        # Failed payments are scheduled by the same policy as failed legs (settings: leg_retry_base_seconds,
        # max_leg_attempts).
        self.retry = retry or RetryPolicy()
        self.payments = Payments(db)
        self.claims = Claims(db, self.retry)
        self.legs = Legs(db)
        self.events = Events(db)
        self.outcomes = Outcomes(db, self.retry)
        self.reports = Reports(db)
        self.api_keys = ApiKeys(db)
        self.tills = TillStore(db)

    @classmethod
    def from_url(
        cls, url: str, *, min_size: int = 2, max_size: int = 10, max_settle_attempts: int = 6,
        retry_base_seconds: float = 2.0, **options: Any,
    ) -> "PostgresStore":
        """A store on a new (not yet opened) pool; the first call opens it."""
        return cls(
            Database(url, min_size=min_size, max_size=max_size, **options),
            retry=RetryPolicy(base_seconds=retry_base_seconds, attempts=max_settle_attempts),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "PostgresStore":
        """The store DATABASE_URL and the pool and retry settings describe."""
        if not settings.database_url:
            raise ValueError("DATABASE_URL is not set: the store needs PostgreSQL")
        return cls.from_url(
            settings.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            max_settle_attempts=settings.max_leg_attempts,
            retry_base_seconds=settings.leg_retry_base_seconds,
        )

    @classmethod
    async def connect(cls, url: str, **options: Any) -> "PostgresStore":
        """A store with its pool open; raises StorageUnavailable if PostgreSQL does not answer."""
        store = cls.from_url(url, **options)
        await store.open()
        return store

    @property
    def change_listener(self) -> ChangeListener | None:
        """Told the hashes of payments a committed transition changed (the live views in Redis)."""
        return self.db.change_listener

    @change_listener.setter
    def change_listener(self, listener: ChangeListener | None) -> None:
        self.db.change_listener = listener

    async def open(self) -> None:
        """Open the pool now (otherwise the first call does)."""
        await self.db.open()

    async def close(self) -> None:
        """Close the pool; the store cannot be used afterwards."""
        await self.db.close()

    async def ping(self) -> None:
        """Round-trip to PostgreSQL; raises StorageUnavailable when it does not answer."""
        await self.db.ping()
