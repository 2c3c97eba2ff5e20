"""Fixtures every suite may use: an isolated PostgreSQL database and Redis key prefix."""

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.databases import TEST_REDIS_URL, create_database, drop_database, unique_prefix


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
    return TEST_REDIS_URL


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
