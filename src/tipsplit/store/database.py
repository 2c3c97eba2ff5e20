"""The PostgreSQL pool: connections, transactions, and the change notices sent once a transaction commits.

Every entity module (payments, claims, legs, events, outcomes, reports, api_keys, tills) runs its statements
through a `Database`. Each of their methods takes an optional `conn`: without one it checks out its own
connection (and transaction where it needs one); with one it runs on the caller's, so a caller can make
several changes in one transaction (`async with db.transaction() as conn: ...`). Change notices of methods
run inside such a transaction are held until it commits, so a listener never sees a change that is rolled back.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import asyncpg
import structlog

from tipsplit.store.changes import ChangeListener
from tipsplit.store.errors import StorageUnavailable
from tipsplit.store.schema import libpq_url

log = structlog.get_logger(__name__)

T = TypeVar("T")
Connection: TypeAlias = asyncpg.Connection

# Errors that mean "the server is not there (any more)", as opposed to a bad query.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(str(v) for v in value)
    raise TypeError(f"cannot store {type(value).__name__} in an event")


def dumps(value: Any) -> str:
    """JSON as the store writes it to jsonb columns (Decimals and datetimes as strings)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    That query is a round trip on every release, and this store never leaves
    such state on a pooled connection: no advisory locks, cursors, LISTEN or
    SET. asyncpg still rolls back an open transaction before calling this.
    """


class Database:
    """An asyncpg pool, opened lazily and reopened on the next call after a failed start.

    A service that started while PostgreSQL was down heals itself. A
    connection that failed mid-query is terminated rather than returned to
    the pool, so a dead socket is never handed out again.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
    ) -> None:
        self._dsn = libpq_url(url)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        # Told the hashes of payments whose state or trail a committed transition changed (store/changes.py).
        self.change_listener: ChangeListener | None = None
        # Notices held for the transactions this database opened, by connection, until they commit.
        self._held: dict[int, list[str]] = {}

    @classmethod
    async def connect(cls, url: str, min_size: int = 2, max_size: int = 10, **options: Any) -> "Database":
        """A database with its pool open; raises StorageUnavailable if PostgreSQL does not answer."""
        db = cls(url, min_size=min_size, max_size=max_size, **options)
        await db.open()
        return db

    async def open(self) -> None:
        """Open the pool now (otherwise the first call does)."""
        async with self._open_lock:
            if self._closed:
                raise StorageUnavailable("the PostgreSQL store is closed")
            if self._pool is not None:
                return
            try:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                    max_inactive_connection_lifetime=60.0,
                    init=_init_connection,
                    reset=_keep_session,
                )
            except UNAVAILABLE_ERRORS as exc:
                raise StorageUnavailable(f"PostgreSQL is unreachable: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Close the pool; the database cannot be used afterwards."""
        async with self._open_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        """Round-trip to PostgreSQL; raises StorageUnavailable when it does not answer."""
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def checkout(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool, terminated instead of reused if it failed; the one place that acquires."""
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        try:
            # No acquire timeout (asyncpg's would wrap every acquire in wait_for): a waiter is bounded anyway,
            # because each connection is released within command_timeout and each new one within connect_timeout.
            async with self._pool.acquire() as conn:
                try:
                    yield conn
                except UNAVAILABLE_ERRORS:
                    conn.terminate()
                    raise
        except UNAVAILABLE_ERRORS as exc:
            raise StorageUnavailable(f"PostgreSQL is unreachable: {type(exc).__name__}: {exc}") from exc

    @asynccontextmanager
    async def connection(self, conn: Connection | None = None) -> AsyncIterator[asyncpg.Connection]:
        """The caller's connection if it gives one, otherwise one of the pool's (autocommit) for this block."""
        if conn is not None:
            yield conn
            return
        async with self.checkout() as own:
            yield own

    @asynccontextmanager
    async def transaction(self, conn: Connection | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A transaction: the caller's if its connection is in one, otherwise a new one.

        Notices of the changes made in a transaction opened here are sent once it commits.
        """
        if conn is not None and conn.is_in_transaction():
            yield conn
            return
        async with self.connection(conn) as own:
            held: list[str] = []
            self._held[id(own)] = held
            try:
                async with own.transaction():
                    yield own
            finally:
                del self._held[id(own)]
        await self.announce(held)

    async def read(self, query: Callable[[asyncpg.Connection], Awaitable[T]], conn: Connection | None = None) -> T:
        """Run a read; on its own connection it is retried once on a fresh one, as a read is safe to repeat."""
        if conn is not None:
            return await query(conn)
        try:
            async with self.checkout() as own:
                return await query(own)
        except StorageUnavailable:
            async with self.checkout() as own:
                return await query(own)

    async def announce(self, payment_hashes: Sequence[str], conn: Connection | None = None) -> None:
        """Tell the listener these payments changed, or, inside a transaction opened here, once it commits."""
        if not payment_hashes:
            return
        held = self._held.get(id(conn)) if conn is not None else None
        if held is not None:
            held.extend(payment_hashes)
            return
        if self.change_listener is None:
            return
        try:
            await self.change_listener(list(dict.fromkeys(payment_hashes)))
        except Exception:
            log.exception("store.change_notice_failed", payments=len(payment_hashes))


class Repository:
    """One entity's statements on a shared `Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def announce(self, payment_hashes: Sequence[str], conn: Connection | None = None) -> None:
        """Tell the database's listener these payments changed (after the caller's transaction commits)."""
        await self.db.announce(payment_hashes, conn)
