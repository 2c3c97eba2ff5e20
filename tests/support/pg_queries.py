"""Count the PostgreSQL statements a store sends, through a wrapper around its database's connection checkout."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from tipsplit.store.database import Database
from tipsplit.store.postgres import PostgresStore


class QueryCounter:
    """Every statement sent on a connection the store checks out, while installed.

    With `about`, only statements with that value among their arguments are kept (a service's background
    work on other payments, or its metrics, is left out).
    """

    def __init__(self, pg: PostgresStore | Database, about: str | None = None) -> None:
        self._db = pg.db if isinstance(pg, PostgresStore) else pg
        self._about = about
        self._original = self._db.checkout
        self.statements: list[str] = []

    def _log(self, record: Any) -> None:
        if self._about is None or self._about in (record.args or ()):
            self.statements.append(record.query)

    @contextlib.asynccontextmanager
    async def _counting(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._original() as conn:
            conn.add_query_logger(self._log)
            try:
                yield conn
            finally:
                conn.remove_query_logger(self._log)

    def __enter__(self) -> "QueryCounter":
        self._db.checkout = self._counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.checkout = self._original  # type: ignore[method-assign]

    async def count(self) -> int:
        """Statements so far (asyncpg calls query loggers on the next loop turn, so let those run first)."""
        await asyncio.sleep(0.01)
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()
