"""Fixtures every suite may use: an isolated PostgreSQL database and Redis key prefix."""

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.databases import (
    create_database,
    drop_database,
    resolved_servers,
    stop_embedded_servers,
    suite_servers,
    unique_prefix,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say when the run used embedded stand-ins, so nobody mistakes it for a run on the configured servers."""
    servers = resolved_servers()
    if servers is None:
        return
    flags = (("PostgreSQL", servers.embedded_postgres), ("Redis", servers.embedded_redis))
    used = " and ".join(name for name, embedded in flags if embedded)
    if used:
        terminalreporter.write_line(f"embedded {used} used: TEST_DATABASE_URL / TEST_REDIS_URL did not answer")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the embedded servers (after the summary, which reports them)."""
    stop_embedded_servers()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """An empty database for this test session, dropped at the end."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture()
def fresh_database_url() -> Iterator[str]:
    """An empty database for one test, for tests that need a schema-less start."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis to use: TEST_REDIS_URL, or an embedded Valkey if that does not answer."""
    return suite_servers().redis_url


@pytest.fixture()
async def key_prefix(redis_url: str) -> AsyncIterator[str]:
    """A Redis key prefix for one test; its keys are deleted afterwards."""
    prefix = unique_prefix()
    yield prefix
    client = aioredis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
