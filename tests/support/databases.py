"""Give each test run its own PostgreSQL database and each test its own Redis key prefix.

The suite talks to real servers (TEST_DATABASE_URL / TEST_REDIS_URL, by
default the local ones) and must never touch data that is not its own.
"""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

ADMIN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def create_database(prefix: str = "tipsplit_test") -> str:
    """Create an empty database with a unique name and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(ADMIN_DATABASE_URL, name)


def drop_database(url: str) -> None:
    """Drop a database made by create_database, closing whatever still uses it."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unique_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"tstest:{uuid.uuid4().hex[:10]}:"
