"""DATABASE_URL with several hosts (libpq style, failover to the writable one) works for migrations and the pool."""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.store.conftest import hybrid_settings, new_hash, tip_dict
from tests.support.tcp_proxy import unused_port
from tipsplit.keyring import KeyRing
from tipsplit.store import HybridTipStore
from tipsplit.store.schema import libpq_url, pending_migrations


def with_dead_first_host(url: str) -> str:
    """The same database behind two hosts, the first of which refuses connections, asking for a writable one."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}127.0.0.1:{unused_port()},{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "target_session_attrs=read-write", ""))


def test_the_url_keeps_every_host_and_the_session_attribute() -> None:
    url = "postgresql+asyncpg://u:p@db1:5432,db2:5433/tipsplit?target_session_attrs=read-write"
    assert libpq_url(url) == "postgresql://u:p@db1:5432,db2:5433/tipsplit?target_session_attrs=read-write"


async def test_a_store_connects_through_the_second_host_when_the_first_is_down(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    url = with_dead_first_host(fresh_database_url)
    store = HybridTipStore(hybrid_settings(url, redis_url, key_prefix, tmp_path), keyring)
    await store.initialize()
    try:
        assert pending_migrations(url) == [], "migrations were applied through the second host"
        payment_hash = new_hash()
        await store.store_tip_data(payment_hash, tip_dict())
        assert store.hot is not None
        await store.hot.delete_tip(payment_hash)
        got = await store.get_tip_data(payment_hash)
        assert got is not None and got["baseAmount"] == 10_000, "read back from PostgreSQL through the pool"
    finally:
        await store.close()
