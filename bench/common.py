"""What every section shares: percentiles, the machine's description, isolated servers, CPU clocks."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg import sql

from tests.support.databases import create_database, drop_database, suite_servers

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def summary(latencies_ms: Sequence[float]) -> dict[str, float | int]:
    """p50 / p99 / mean of a list of latencies in ms (nearest-rank percentiles)."""
    if not latencies_ms:
        return {"n": 0, "p50_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
    ordered = sorted(latencies_ms)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(rank(0.50), 4),
        "p99_ms": round(rank(0.99), 4),
        "mean_ms": round(statistics.fmean(ordered), 4),
    }


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, digits)


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, load average and versions: what a reader needs to compare figures."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass

    def version(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unavailable"

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "loadavg_at_start": loadavg(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "pgbench": version("pgbench", "--version"),
        "redis_benchmark": version("redis-benchmark", "--version"),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (not its children) has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@dataclass
class Servers:
    """The shared PostgreSQL and Redis, touched only through our own databases and key prefix."""

    admin_url: str
    redis_url: str
    prefix: str
    databases: list[str]

    @classmethod
    def resolve(cls) -> "Servers":
        servers = suite_servers()
        return cls(servers.admin_database_url, servers.redis_url, f"tsbench:{uuid.uuid4().hex[:10]}:", [])

    def database(self, label: str) -> str:
        """A new empty database `tipsplit_bench_<label>_<random>`, dropped by `cleanup`."""
        url = create_database(f"tipsplit_bench_{label}")
        self.databases.append(url)
        return url

    def drop(self, url: str) -> None:
        drop_database(url)
        if url in self.databases:
            self.databases.remove(url)

    async def forget_keys(self, pattern: str | None = None) -> int:
        """Delete this run's Redis keys (never anything else)."""
        client = aioredis.from_url(self.redis_url)
        deleted = 0
        try:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=pattern or f"{self.prefix}*", count=2000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += await client.delete(*batch)
                    batch = []
            if batch:
                deleted += await client.delete(*batch)
        finally:
            await client.aclose()
        return deleted

    async def cleanup(self) -> None:
        for url in list(self.databases):
            self.drop(url)
        await self.forget_keys()


def execute(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params or None)


def table_rows(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def emit(results: Any, out: Path | None) -> None:
    """A section's results as indented JSON, into `out` or onto stdout."""
    text = json.dumps(results, indent=1) + "\n"
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)
