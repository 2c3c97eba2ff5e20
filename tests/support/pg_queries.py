"""Count the PostgreSQL statements a ColdStore sends, through a wrapper around its connection checkout."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from tipsplit.store.cold import ColdStore


class QueryCounter:
    """Every statement sent on a connection the store checks out, while installed.

    With `about`, only statements with that value among their arguments are kept (a service's background
    work on other payments, or its metrics, is left out).
    """

    def __init__(self, cold: ColdStore, about: str | None = None) -> None:
        self._cold = cold
        self._about = about
        self._original = cold._connection
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
        self._cold._connection = self._counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self._cold._connection = self._original  # type: ignore[method-assign]

    async def count(self) -> int:
        """Statements so far (asyncpg calls query loggers on the next loop turn, so let those run first)."""
        await asyncio.sleep(0.01)
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()
