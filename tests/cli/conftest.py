"""The operator commands run as an operator runs them: `tipsplit …` with settings in the environment."""

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from typer.testing import CliRunner, Result

from tests.services.conftest import World, world  # noqa: F401  (the fixture, for tests that need payments)
from tipsplit.cli.main import app

KEY_OLD = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY_NEW = "k2:" + base64.b64encode(bytes(range(32, 64))).decode()


@dataclass
class Cli:
    """Runs `tipsplit` in-process with a test's own database, Redis prefix and data directory."""

    env: dict[str, str | None]
    database_url: str
    redis_url: str
    prefix: str
    tmp_path: Path

    def __call__(self, *args: str, **env: str | None) -> Result:
        """Invoke the command; the logging it sets up for its own process is undone afterwards."""
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            return CliRunner().invoke(app, list(args), env={**self.env, **env}, catch_exceptions=False)
        finally:
            root.handlers[:], root.level = handlers, level

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params or None).fetchall()

    def redis_values(self) -> list[bytes]:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return [client.dump(key) or b"" for key in client.scan_iter(match=f"{self.prefix}*", count=1000)]
        finally:
            client.close()


@pytest.fixture()
def cli(fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Cli]:
    env = {
        "DATABASE_URL": fresh_database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "ENCRYPTION_KEYS": KEY_OLD,
        "TIPSPLIT_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
        "LEGACY_ENCRYPTION_KEY": None,
    }
    yield Cli(env, fresh_database_url, redis_url, key_prefix, tmp_path)


@pytest.fixture()
def world_cli(world: World, tmp_path: Path) -> Cli:  # noqa: F811
    """`tipsplit` configured exactly like the world's service instances, Blink included."""
    settings = world.settings
    assert settings.database_url and settings.redis_url
    env: dict[str, str | None] = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "ENCRYPTION_KEYS": settings.encryption_keys,
        "BLINK_API_URL": settings.blink_api_url,
        "BLINKPOS_API_KEY": settings.blinkpos_api_key,
        "BLINKPOS_BTC_WALLET_ID": settings.blinkpos_btc_wallet_id,
        "TIPSPLIT_DATA_DIR": str(tmp_path / "cli-data"),
        "LOG_LEVEL": "WARNING",
    }
    return Cli(env, settings.database_url, settings.redis_url, settings.redis_key_prefix, tmp_path)
