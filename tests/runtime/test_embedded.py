"""The embedded servers: real PostgreSQL and Valkey processes in a temporary data dir."""

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis

from tipsplit.runtime.embedded import (
    EmbeddedServerError,
    EmbeddedServers,
    EmbeddedStack,
    embedded_stack_for,
    redact,
    resolve_urls,
)
from tipsplit.settings import Settings


@pytest.fixture()
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp tree: as root, PostgreSQL runs as another user, and any
    pytest run on the machine may make /tmp/pytest-of-root private again, locking that user out."""
    parent = Path(tempfile.mkdtemp(prefix="tipsplit-embedded-test-"))
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture()
def stack(data_dir: Path) -> Iterator[EmbeddedStack]:
    """A stack in a temporary dir, stopped even if the test fails half-way."""
    embedded = EmbeddedStack(data_dir)
    yield embedded
    embedded.stop()


def server_pids(stack: EmbeddedStack) -> list[int]:
    """The postmaster and valkey-server pids, read from their pid files."""
    postmaster = int((stack.pgdata / "postmaster.pid").read_text().splitlines()[0])
    valkey = int((stack.valkey_dir / "valkey.pid").read_text())
    return [postmaster, valkey]


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def urls(servers: EmbeddedServers) -> tuple[str, str]:
    assert servers.database_url is not None and servers.redis_url is not None
    return servers.database_url, servers.redis_url


def test_data_survives_a_restart_and_stop_leaves_no_process(stack: EmbeddedStack) -> None:
    database_url, redis_url = urls(stack.start())
    assert urlsplit(database_url).hostname == "127.0.0.1" and urlsplit(database_url).path == "/tipsplit"
    assert urlsplit(redis_url).hostname == "127.0.0.1"
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO kept VALUES (1, 'paid')")
    client = redis.Redis.from_url(redis_url)
    client.set("tip:kept", "pending")
    client.close()
    pids = server_pids(stack)

    stack.stop()
    assert not any(alive(pid) for pid in pids)
    assert not (stack.pgdata / "postmaster.pid").exists()
    assert not (stack.valkey_dir / "valkey.pid").exists()

    again = stack.start()
    assert urls(again) == (database_url, redis_url), "remembered ports keep URLs stable"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT note FROM kept WHERE id = 1").fetchone() == ("paid",)
    client = redis.Redis.from_url(redis_url)
    assert client.get("tip:kept") == b"pending", "the AOF brought the key back"
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()


def test_start_is_idempotent_and_only_the_owner_stops(stack: EmbeddedStack) -> None:
    first = stack.start()
    assert stack.start() is first
    pids = server_pids(stack)

    second = EmbeddedStack(stack.data_dir)
    assert second.start() == first
    assert server_pids(second) == pids, "reused, not started twice"
    second.stop()
    assert all(alive(pid) for pid in pids), "a non-owner leaves the servers to their owner"
    stack.stop()
    assert not any(alive(pid) for pid in pids)


def test_servers_left_by_a_crashed_owner_are_adopted_and_stopped(data_dir: Path) -> None:
    crash = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from tipsplit.runtime.embedded import EmbeddedStack\n"
        "EmbeddedStack(Path(sys.argv[1])).start()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(data_dir)], check=True, capture_output=True, timeout=60)
    orphan = EmbeddedStack(data_dir)
    pids = server_pids(orphan)
    assert all(alive(pid) for pid in pids)

    database_url, redis_url = urls(orphan.start())
    assert server_pids(orphan) == pids
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    orphan.stop()
    assert not any(alive(pid) for pid in pids)


def test_stale_pid_files_after_a_crash_do_not_block_start(stack: EmbeddedStack) -> None:
    stack.start()
    stack.stop()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    postmaster = stack.pgdata / "postmaster.pid"
    postmaster.write_text(f"{dead_pid}\n{stack.pgdata}\n{int(time.time())}\n5432\n\n127.0.0.1\n 0 0\nready\n")
    (stack.valkey_dir / "valkey.pid").write_text(str(dead_pid))

    database_url, redis_url = urls(stack.start())
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert redis.Redis.from_url(redis_url).ping()


def test_a_failed_start_leaves_no_server_running(stack: EmbeddedStack) -> None:
    stack.data_dir.mkdir(parents=True)
    stack.valkey_dir.write_text("not a directory")
    with pytest.raises(OSError):
        stack.start()
    assert (stack.pgdata / "PG_VERSION").exists(), "PostgreSQL had started"
    assert not (stack.pgdata / "postmaster.pid").exists(), "and was stopped again"


async def test_async_context_manager_runs_only_the_servers_asked_for(data_dir: Path) -> None:
    async with EmbeddedStack(data_dir, postgres=False) as servers:
        assert servers.database_url is None
        assert servers.redis_url is not None
        assert redis.Redis.from_url(servers.redis_url).ping()
        valkey_pid = int((data_dir / "valkey" / "valkey.pid").read_text())
    assert not (data_dir / "postgres").exists()
    assert not alive(valkey_pid)


def test_only_missing_urls_get_embedded_servers(data_dir: Path) -> None:
    configured = Settings(database_url="postgresql://db.example/tipsplit", redis_url="redis://cache.example/0")
    assert resolve_urls(configured, None) is configured

    stack = EmbeddedStack(data_dir, postgres=False)
    stack.start()
    try:
        settings = Settings(
            database_url="postgresql://db.example/tipsplit",
            redis_url=None,
            redis_password="managed-secret",
            redis_tls=True,
        )
        resolved = resolve_urls(settings, stack)
        assert resolved.database_url == "postgresql://db.example/tipsplit"
        assert stack.servers is not None and resolved.redis_url == stack.servers.redis_url
        assert resolved.redis_password is None and resolved.redis_tls is False
    finally:
        stack.stop()

    assert embedded_stack_for(configured) is None
    partial = embedded_stack_for(Settings(database_url="", redis_url="redis://cache.example/0", data_dir=data_dir))
    assert partial is not None and (partial.postgres, partial.redis) == (True, False)
    with pytest.raises(EmbeddedServerError, match="DATABASE_URL"):
        resolve_urls(Settings(database_url=None, redis_url="redis://cache.example/0"), None)


def test_without_auth_the_servers_take_password_less_urls(data_dir: Path) -> None:
    stack = EmbeddedStack(data_dir, auth=False)
    try:
        database_url, redis_url = urls(stack.start())
        assert urlsplit(database_url).password is None and urlsplit(redis_url).password is None
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(redis_url).ping()
    finally:
        stack.stop()
    with pytest.raises(EmbeddedServerError, match="auth=False"):
        EmbeddedStack(data_dir).start()


def test_redact_masks_passwords_for_logs() -> None:
    masked = redact("postgresql://postgres:s3cret@127.0.0.1:5/tipsplit")
    assert masked == "postgresql://postgres:***@127.0.0.1:5/tipsplit"
    assert redact("redis://:s3cret@127.0.0.1:6/0") == "redis://:***@127.0.0.1:6/0"
    assert redact("redis://127.0.0.1:6/0") == "redis://127.0.0.1:6/0"
    assert redact(None) is None
