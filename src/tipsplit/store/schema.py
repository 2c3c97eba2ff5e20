"""Apply the numbered SQL migrations in `store/migrations/` with yoyo.

Several instances may start at once; a PostgreSQL advisory lock serialises
them before yoyo even creates its own bookkeeping tables (whose creation is
not safe to race), and yoyo's lock table guards the apply step itself.

DATABASE_URL may list several hosts (libpq's `host1:port1,host2:port2`, e.g.
with `target_session_attrs=read-write` to find the primary). asyncpg and
psycopg take such a URL as it is; yoyo cannot parse it, so it is given the
one host the guard connection actually reached.
"""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import structlog
from yoyo import get_backend, read_migrations

from tipsplit.store.errors import StorageUnavailable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ADVISORY_LOCK_KEY = 0x7469_7073_706C_6974 & 0x7FFF_FFFF_FFFF_FFFF  # "tipsplit"

log = structlog.get_logger(__name__)


def libpq_url(database_url: str) -> str:
    """The URL as libpq/asyncpg want it: plain `postgresql://`, whatever driver suffix it carried."""
    parts = urlsplit(database_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
    return urlunsplit(("postgresql", *parts[1:]))


def yoyo_url(database_url: str) -> str:
    """The URL with yoyo's scheme for the psycopg 3 backend."""
    return "postgresql+psycopg" + libpq_url(database_url).removeprefix("postgresql")


def connected_url(database_url: str, connection: psycopg.Connection) -> str:
    """A URL of several hosts narrowed to the one `connection` reached (others are returned unchanged)."""
    parts = urlsplit(libpq_url(database_url))
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return database_url
    host = connection.info.host
    netloc = f"{userinfo}{at}{f'[{host}]' if ':' in host else host}:{connection.info.port}"
    return urlunsplit((parts.scheme, netloc, *parts[2:]))


def apply_migrations(database_url: str, lock_timeout: float = 60.0) -> list[str]:
    """Bring the schema up to date; returns the ids of the migrations this call applied."""
    try:
        guard_connection = psycopg.connect(libpq_url(database_url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"PostgreSQL is unreachable, migrations not applied: {exc}") from exc
    with guard_connection as guard:
        guard.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout * 1000)}ms",))
        guard.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            backend = get_backend(yoyo_url(connected_url(database_url, guard)))
            try:
                migrations = read_migrations(str(MIGRATIONS_DIR))
                with backend.lock(timeout=lock_timeout):
                    pending = backend.to_apply(migrations)
                    backend.apply_migrations(pending)
            finally:
                backend.connection.close()
        finally:
            guard.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    applied = [migration.id for migration in pending]
    log.info("migrations applied", applied=applied)
    return applied


def pending_migrations(database_url: str) -> list[str]:
    """Ids of the migrations not yet applied, for `tipsplit db status`."""
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as probe:
        backend = get_backend(yoyo_url(connected_url(database_url, probe)))
    try:
        return [migration.id for migration in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]
    finally:
        backend.connection.close()
