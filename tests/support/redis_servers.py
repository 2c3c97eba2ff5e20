"""Throw-away Redis deployments for the suite: a three-master Redis Cluster, and a master watched by Sentinel.

`TIPSPLIT_TEST_REDIS=cluster` (or `sentinel`) makes `suite_servers()` hand the
whole run one of these instead of TEST_REDIS_URL, so every test that takes the
`redis_url` fixture runs against it unchanged. They are started from the
machine's `redis-server` / `redis-cli`, in a temporary directory, on free
ports, and stopped with the run.
"""

import atexit
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
SENTINEL_MASTER = "tipsplit"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free port whose cluster bus port (10000 higher, so at most 55535) is free too."""
    while True:
        port = random.randint(20_000, 45_000)
        if _port_free(port) and _port_free(port + 10_000):
            return port


def redis_binaries_present() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def _client(port: int) -> redis.Redis:
    return redis.Redis(HOST, port, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {START_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.1)


@dataclass
class RedisProcesses:
    """redis-server processes started in one temporary directory, stopped (and the directory removed) together."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tipsplit-test-redis-")))
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        atexit.register(self.stop)

    def start(self, port: int, *args: str, sentinel: bool = False) -> None:
        """One server on `port` with `args` (no persistence); with `sentinel`, a sentinel (it needs a config file)."""
        workdir = self.root / str(port)
        workdir.mkdir()
        command = ["redis-server"]
        if sentinel:
            config = workdir / "sentinel.conf"
            config.write_text("")
            command += [str(config), "--sentinel"]
        command += ["--port", str(port), "--bind", HOST, "--dir", str(workdir), "--save", "", "--appendonly", "no",
                    "--logfile", str(workdir / "log"), *args]
        self.commands[port] = command
        self._launch(port)

    def restart(self, port: int) -> None:
        """Start a server that was killed again, on its port and directory (a cluster node keeps its nodes.conf)."""
        self._launch(port)

    def _launch(self, port: int) -> None:
        workdir = self.root / str(port)
        process = subprocess.Popen(self.commands[port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes[port] = process

        def answers() -> bool:
            if process.poll() is not None:
                log = (workdir / "log").read_text() if (workdir / "log").exists() else ""
                raise RuntimeError(f"redis-server on port {port} exited: {log[-500:]}")
            return bool(_client(port).ping())

        _wait_for(answers, f"redis-server on port {port}")

    def kill(self, port: int) -> None:
        """Stop one server at once, as a crash would."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.root, ignore_errors=True)


class LocalCluster(RedisProcesses):
    """Three masters, all 16384 slots assigned: the smallest real Redis Cluster; with `replicas`, that many per master."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        super().__init__()
        self.replicas = replicas
        self.ports = [free_port() for _ in range(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    def start_cluster(self) -> "LocalCluster":
        for port in self.ports:
            self.start(port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout", "2000")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=START_TIMEOUT_SECONDS,
        )
        self.wait_until_ok()
        return self

    def masters(self) -> list[int]:
        """The ports of the running nodes that are masters now."""
        return [port for port in self.ports
                if port in self.processes and _client(port).info("replication")["role"] == "master"]

    def replicate(self) -> None:
        """Wait until every master's replicas hold its writes (replication is asynchronous, a failover may lose them)."""
        for port in self.masters():
            acknowledged = _client(port).execute_command("WAIT", self.replicas, 10_000)
            if acknowledged < self.replicas:
                raise RuntimeError(f"the replicas of redis on port {port} did not catch up")

    def wait_until_ok(self) -> None:
        """Until every node reports all slots served and every replica is in sync (a replica that never synced
        does not take over from its master)."""

        def ready(port: int) -> bool:
            replication = _client(port).info("replication")
            synced = replication["role"] == "master" or replication.get("master_link_status") == "up"
            return synced and _client(port).cluster("INFO").get("cluster_state") == "ok"

        for port in [port for port in self.ports if port in self.processes]:
            _wait_for(lambda port=port: ready(port), f"cluster node {port}")


class LocalSentinel(RedisProcesses):
    """A master, a replica of it, and one sentinel watching them under the name `tipsplit`."""

    def __init__(self) -> None:
        super().__init__()
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_port = free_port()

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.sentinel_port}/{SENTINEL_MASTER}"

    def master(self) -> tuple[str, int]:
        """Where the sentinel says the master is now."""
        host, port = _client(self.sentinel_port).sentinel_get_master_addr_by_name(SENTINEL_MASTER)
        return host.decode() if isinstance(host, bytes) else str(host), int(port)

    def start_sentinel(self) -> "LocalSentinel":
        self.start(self.master_port)
        self.start(self.replica_port, "--replicaof", HOST, str(self.master_port))
        self.start(self.sentinel_port, "--sentinel", "monitor", SENTINEL_MASTER, HOST, str(self.master_port), "1",
                   "--sentinel", "down-after-milliseconds", SENTINEL_MASTER, "1000",
                   "--sentinel", "failover-timeout", SENTINEL_MASTER, "5000", sentinel=True)
        _wait_for(lambda: self.master()[1] == self.master_port, "the sentinel")
        return self

    def failover(self) -> None:
        """Promote the replica (as a dead master would) and wait until the sentinel names it."""
        _wait_for(
            lambda: bool(_client(self.sentinel_port).execute_command("SENTINEL", "REPLICAS", SENTINEL_MASTER)),
            "the sentinel's view of the replica",
        )
        old = self.master()
        _client(self.sentinel_port).execute_command("SENTINEL", "FAILOVER", SENTINEL_MASTER)
        _wait_for(lambda: self.master() != old, "the failover")
