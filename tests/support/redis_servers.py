"""Throw-away Redis deployments for the suite: a three-master Redis Cluster, and a master watched by Sentinel.

`TIPSPLIT_TEST_REDIS=cluster` (or `sentinel`) makes `suite_servers()` hand the
whole run one of these instead of TEST_REDIS_URL, so every test that takes the
`redis_url` fixture runs against it unchanged. They are started from the
machine's `redis-server` / `redis-cli`, in a temporary directory, on free
ports, and stopped with the run.
"""

import atexit
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


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
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: bool(_client(port).ping()), f"redis-server on port {port}")

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
    """Three masters, no replicas, all 16384 slots assigned: the smallest real Redis Cluster."""

    def __init__(self, masters: int = 3) -> None:
        super().__init__()
        self.ports = [free_port() for _ in range(masters)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports)

    def start_cluster(self) -> "LocalCluster":
        for port in self.ports:
            self.start(port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout", "2000")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=START_TIMEOUT_SECONDS,
        )
        for port in self.ports:
            _wait_for(lambda port=port: _client(port).cluster("INFO").get("cluster_state") == "ok",
                      f"cluster node {port}")
        return self


class LocalSentinel(RedisProcesses):
    """One master and one sentinel watching it under the name `tipsplit`."""

    def __init__(self) -> None:
        super().__init__()
        self.master_port = free_port()
        self.sentinel_port = free_port()

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.sentinel_port}/{SENTINEL_MASTER}"

    def start_sentinel(self) -> "LocalSentinel":
        self.start(self.master_port)
        self.start(self.sentinel_port, "--sentinel", "monitor", SENTINEL_MASTER, HOST, str(self.master_port), "1",
                   sentinel=True)
        _wait_for(
            lambda: _client(self.sentinel_port).execute_command("SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER)
            is not None,
            "the sentinel",
        )
        return self
