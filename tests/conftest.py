"""Fixtures every suite may use: an isolated PostgreSQL database and Redis key prefix."""

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.databases import (
    REDIS_DEPLOYMENT,
    create_database,
    drop_database,
    resolved_servers,
    stop_embedded_servers,
    suite_servers,
    unique_prefix,
)
from tipsplit.store.redis_client import connect_redis


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "single_redis: needs one Redis server at REDIS_URL (a proxy in front of it, a restart); "
        "skipped when TIPSPLIT_TEST_REDIS selects a cluster or a sentinel"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under TIPSPLIT_TEST_REDIS=cluster or =sentinel, leave out the tests that stand between tipsplit and one server."""
    if REDIS_DEPLOYMENT == "single":
        return
    skip = pytest.mark.skip(reason=f"needs a single Redis server, this run uses a {REDIS_DEPLOYMENT}")
    for item in items:
        if item.get_closest_marker("single_redis"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say when the run used embedded stand-ins, so nobody mistakes it for a run on the configured servers."""
    servers = resolved_servers()
    if servers is None:
        return
    if servers.redis_deployment != "single":
        terminalreporter.write_line(f"Redis: a {servers.redis_deployment} of this run's own ({servers.redis_url})")
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
    client = connect_redis(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
