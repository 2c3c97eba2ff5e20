"""The shared fixtures hand out isolated databases and key prefixes on servers that answer."""

import psycopg

from tests.support.databases import suite_servers
from tipsplit.store.redis_client import connect_redis


def test_a_fresh_database_is_empty_and_not_the_session_one(database_url: str, fresh_database_url: str) -> None:
    assert database_url != fresh_database_url
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() != (None,)
    with psycopg.connect(fresh_database_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)


async def test_key_prefix_is_unique_and_on_the_suite_redis(redis_url: str, key_prefix: str) -> None:
    assert redis_url == suite_servers().redis_url
    client = connect_redis(redis_url)
    try:
        assert await client.set(f"{key_prefix}probe", "1", nx=True)
        assert [key async for key in client.scan_iter(match=f"{key_prefix}*")] == [f"{key_prefix}probe".encode()]
    finally:
        await client.aclose()
