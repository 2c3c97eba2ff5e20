"""Give each test run its own PostgreSQL database and each test its own Redis key prefix.

The suite talks to real servers (TEST_DATABASE_URL / TEST_REDIS_URL, by
default the local ones) and must never touch data that is not its own. Where a
configured server does not answer, the run starts tipsplit's embedded
PostgreSQL / Valkey once, in a temporary directory, so the suite also runs on
a machine with neither server installed. Use the fixtures (or
`suite_servers()`), not the two constants, to reach the servers actually used.

TIPSPLIT_TEST_REDIS=cluster (or =sentinel) gives the run a Redis Cluster of
three masters (or a master behind Sentinel) of its own instead
(tests/support/redis_servers.py); build clients for `redis_url` with
`tipsplit.store.redis_client.connect_redis`, which understands all three.
"""

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from tests.support.redis_servers import LocalCluster, LocalSentinel, RedisProcesses
from tipsplit.runtime.embedded import EmbeddedStack, redis_answers

ADMIN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_DEPLOYMENT = os.environ.get("TIPSPLIT_TEST_REDIS", "single")


@dataclass(frozen=True)
class SuiteServers:
    """The servers this run uses, and which of them are embedded stand-ins."""

    admin_database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool
    redis_deployment: str = "single"


_servers: SuiteServers | None = None
_stack: EmbeddedStack | None = None
_redis_processes: RedisProcesses | None = None


def postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def suite_servers() -> SuiteServers:
    """The configured servers where they answer, embedded ones (started once per run) where they don't."""
    global _servers, _stack, _redis_processes
    if _servers is not None:
        return _servers
    need_postgres = not postgres_answers(ADMIN_DATABASE_URL)
    admin_url, redis_url = ADMIN_DATABASE_URL, TEST_REDIS_URL
    if REDIS_DEPLOYMENT == "cluster":
        cluster = LocalCluster()
        _redis_processes = cluster
        redis_url = cluster.start_cluster().url
    elif REDIS_DEPLOYMENT == "sentinel":
        sentinel = LocalSentinel()
        _redis_processes = sentinel
        redis_url = sentinel.start_sentinel().url
    elif REDIS_DEPLOYMENT != "single":
        raise ValueError(f"TIPSPLIT_TEST_REDIS must be single, cluster or sentinel, not {REDIS_DEPLOYMENT!r}")
    need_redis = REDIS_DEPLOYMENT == "single" and not redis_answers(TEST_REDIS_URL, timeout=2)
    if need_postgres or need_redis:
        data_dir = Path(tempfile.mkdtemp(prefix="tipsplit-test-servers-"))
        # Without auth, like the machine's servers, so tests may build URLs of their own from host and port.
        _stack = EmbeddedStack(data_dir, postgres=need_postgres, redis=need_redis, auth=False)
        started = _stack.start()
        admin_url = started.database_url or admin_url
        redis_url = started.redis_url or redis_url
    _servers = SuiteServers(admin_url, redis_url, need_postgres, need_redis, REDIS_DEPLOYMENT)
    return _servers


def resolved_servers() -> SuiteServers | None:
    """The servers in use if this run has needed any yet (reporting must not start servers)."""
    return _servers


def stop_embedded_servers() -> None:
    """Stop the embedded stand-ins and the cluster or sentinel, if this run started any, and delete their data."""
    global _servers, _stack, _redis_processes
    if _stack is not None:
        _stack.stop()
        shutil.rmtree(_stack.data_dir, ignore_errors=True)
    if _redis_processes is not None:
        _redis_processes.stop()
    _servers, _stack, _redis_processes = None, None, None


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def create_database(prefix: str = "tipsplit_test") -> str:
    """Create an empty database with a unique name and return its URL."""
    admin_url = suite_servers().admin_database_url
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def drop_database(url: str) -> None:
    """Drop a database made by create_database, closing whatever still uses it."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(suite_servers().admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def unique_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"tstest:{uuid.uuid4().hex[:10]}:"
