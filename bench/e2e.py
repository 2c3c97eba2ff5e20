"""Sections 3 and 5 and the stats endpoint: the service and the simulator as separate processes over real HTTP.

Each POS client loops: POST /api/blink/create-invoice, then pays the invoice at
the simulator (POST /sim/pay) and goes on to the next sale; the simulator's
signed webhook makes the service settle (base to the merchant, tips to two
recipients). A payment's payment-to-forwarded time runs from the moment the
simulator confirmed the customer's payment to the `processed_at` the service
wrote when it archived the payment as completed (same host clock). The CPU of
the service, of the PostgreSQL backends serving its database and of the
simulator is read from /proc for each phase, so the simulator's share can be
taken out. With the simulator's latency setting, the same loop shows what a
distant Blink costs a payment's forwarding (`latency_section`).
"""

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import Servers, cpu_seconds, ratio, rss_mb, summary
from bench.storage import ENCRYPTION_KEYS

# The bench's own connections (polling for completed payments) say so, and their CPU is not the service's.
PROBE = "tipsplit-bench-probe"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"tipsplit-bench-webhook-secret-32").decode()
SPLIT = [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(url: str, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + path)).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url}{path} did not answer within {timeout}s")
            await asyncio.sleep(0.2)


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


@dataclass
class Stack:
    """The simulator, its accounts and one service process on one database."""

    sim: Process
    service: Process
    database_url: str
    prefix: str
    merchant: dict[str, Any]
    pos: dict[str, Any]
    extra: list[Process] = field(default_factory=list)


async def start_sim(log_dir: Path) -> Process:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / "sim.log").open("ab")
    # Blink's invoice limits are off until the service paces its own invoice creations.
    popen = subprocess.Popen([sys.executable, "-m", "tipsplit", "sim", "--port", str(port), "--seed", "7",
                              "--no-rate-limits"], stdout=log, stderr=subprocess.STDOUT)
    process = Process(popen, f"http://127.0.0.1:{port}")
    await wait_until_up(process.url, "/sim/webhooks")
    return process


async def start_service(sim: Process, pos: dict[str, Any], database_url: str, redis_url: str, prefix: str,
                        data_dir: Path, name: str = "service", webhook: bool = True,
                        env_overrides: dict[str, str] | None = None) -> Process:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BLINK"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=prefix,
        BLINK_API_URL=f"{sim.url}/graphql",
        BLINKPOS_API_KEY=pos["apiKey"],
        BLINKPOS_BTC_WALLET_ID=pos["btcWalletId"],
        BLINK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ENCRYPTION_KEYS=ENCRYPTION_KEYS,
        TIPSPLIT_DATA_DIR=str(data_dir),
        RATE_LIMIT_PER_WALLET="100000000",
        RATE_LIMIT_PER_IP="100000000",
        # The simulator runs without Blink's invoice limits (--no-rate-limits), so the budget is opened to match.
        BLINK_INVOICE_LIMIT_POINTS="100000000",
        PUBLIC_METRICS="true",
        LOG_FORMAT="json",
    )
    env.update(env_overrides or {})
    log = (data_dir / f"{name}.log").open("ab")
    popen = subprocess.Popen([sys.executable, "-m", "tipsplit", "serve", "--port", str(port)],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
    process = Process(popen, f"http://127.0.0.1:{port}")
    await wait_until_up(process.url, "/api/health", timeout=90)
    if not webhook:
        return process
    # As at Blink, the endpoint belongs to the POS account: the receives of the merchant and the tip
    # recipients are their own accounts' business, not the service's.
    async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
        (await client.post("/sim/webhooks", json={"url": f"{process.url}/api/blink/webhook",
                                                   "secret": WEBHOOK_SECRET,
                                                   "accountId": pos["accountId"]})).raise_for_status()
    return process


@contextlib.asynccontextmanager
async def stack(servers: Servers, database_url: str, data_dir: Path) -> AsyncIterator[Stack]:
    sim = await start_sim(data_dir)
    service = None
    try:
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as client:
            accounts = {}
            for username in ("blinkpos", "merchant", "alice", "bob"):
                # tipsplit refuses merchant keys that can spend: the merchant's key is READ-only.
                scopes = ["READ"] if username == "merchant" else ["READ", "RECEIVE", "WRITE"]
                response = await client.post("/sim/accounts",
                                             json={"username": username, "balance": 0, "scopes": scopes})
                response.raise_for_status()
                accounts[username] = response.json()
        service = await start_service(sim, accounts["blinkpos"], database_url, servers.redis_url, servers.prefix,
                                      data_dir / "service")
        world = Stack(sim, service, database_url, servers.prefix, accounts["merchant"], accounts["blinkpos"])
        try:
            yield world
        finally:
            for extra in world.extra:
                extra.stop()
    finally:
        if service is not None:
            service.stop()
        sim.stop()


async def _completed(database_url: str, hashes: list[str]) -> dict[str, float]:
    """processed_at (epoch seconds) of the payments among `hashes` that are completed."""

    def query() -> dict[str, float]:
        with psycopg.connect(database_url, autocommit=True, application_name=PROBE) as conn:
            rows = conn.execute(
                "SELECT payment_hash, extract(epoch FROM processed_at)::float8 FROM payment_splits"
                " WHERE payment_hash = ANY(%s) AND status = 'completed'",
                (hashes,),
            ).fetchall()
        return {row[0]: float(row[1]) for row in rows}

    return await asyncio.to_thread(query)


def _backends_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database, other than the bench's own."""
    with psycopg.connect(database_url, autocommit=True, application_name=PROBE) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> %s",
            (PROBE,),
        ).fetchall()
    out: dict[int, float] = {}
    for (pid,) in rows:
        with contextlib.suppress(OSError):
            out[int(pid)] = cpu_seconds(int(pid))
    return out


def _backends_cpu_since(database_url: str, before: dict[int, float]) -> float:
    """CPU the backends spent since `before`: a backend opened in between counts whole (one closed is missed)."""
    now = _backends_cpu(database_url)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())


async def drive(world: Stack, clients: int, payments: int, *, settle_timeout: float = 600) -> dict[str, Any]:
    """`clients` POS loops making `payments` sales in all; waits until every one is forwarded."""
    create_ms: list[float] = []
    paid_at: dict[str, float] = {}
    errors: list[str] = []
    work = iter(range(payments))
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    cpu_before = {"service": cpu_seconds(world.service.pid), "sim": cpu_seconds(world.sim.pid)}
    postgres_before = await asyncio.to_thread(_backends_cpu, world.database_url)
    bench_cpu_before = sum(os.times()[:2])
    started_wall = time.time()
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=world.service.url, timeout=60, limits=limits) as api, \
            httpx.AsyncClient(base_url=world.sim.url, timeout=60, limits=limits) as sim:

        async def pos_client(index: int) -> None:
            for sale in work:
                body = {"userWalletId": world.merchant["btcWalletId"], "apiKey": world.merchant["apiKey"],
                        "baseAmount": 1_000 + sale % 997, "tipAmount": 150 + index, "tipRecipients": SPLIT,
                        "memo": f"bench sale {sale}"}
                t0 = time.perf_counter()
                try:
                    response = await api.post("/api/blink/create-invoice", json=body)
                except httpx.TransportError as exc:
                    errors.append(f"create: {type(exc).__name__}: {exc}")
                    continue
                create_ms.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    errors.append(f"create {response.status_code}: {response.text[:200]}")
                    continue
                invoice = response.json()
                try:
                    paid = await sim.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
                except httpx.TransportError as exc:
                    errors.append(f"pay: {type(exc).__name__}: {exc}")
                    continue
                if paid.status_code >= 300:
                    errors.append(f"pay {paid.status_code}: {paid.text[:200]}")
                    continue
                paid_at[invoice["paymentHash"]] = time.time()

        await asyncio.gather(*(pos_client(i) for i in range(clients)))
        created_seconds = time.perf_counter() - started
        hashes = list(paid_at)
        deadline = time.monotonic() + settle_timeout
        done: dict[str, float] = {}
        while True:
            done = await _completed(world.database_url, hashes)
            if len(done) == len(hashes) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
    settled_wall = max(done.values(), default=time.time())
    cpu = {"service": cpu_seconds(world.service.pid) - cpu_before["service"],
           "sim": cpu_seconds(world.sim.pid) - cpu_before["sim"],
           "postgres": await asyncio.to_thread(_backends_cpu_since, world.database_url, postgres_before)}
    bench_cpu = sum(os.times()[:2]) - bench_cpu_before
    forwarded_ms = [(done[h] - paid_at[h]) * 1000 for h in done]
    settled_seconds = max(settled_wall - started_wall, 1e-6)
    n = max(len(done), 1)
    return {
        "clients": clients,
        "payments": payments,
        "settled": len(done),
        "errors": len(errors),
        "first_errors": errors[:3],
        "created_per_second": round(len(paid_at) / created_seconds, 1),
        "settled_per_second": round(len(done) / settled_seconds, 1),
        "create_invoice": summary(create_ms),
        "payment_to_forwarded": summary(forwarded_ms),
        "cpu_seconds": {"service": round(cpu["service"], 2), "simulator": round(cpu["sim"], 2),
                        "postgres": round(cpu["postgres"], 2), "bench_clients": round(bench_cpu, 2)},
        "cpu_ms_per_payment": {"service": round(cpu["service"] * 1000 / n, 2),
                               "simulator": round(cpu["sim"] * 1000 / n, 2),
                               "postgres": round(cpu["postgres"] * 1000 / n, 2),
                               "bench_clients": round(bench_cpu * 1000 / n, 2)},
        "simulator_cpu_share": ratio(cpu["sim"], cpu["sim"] + cpu["service"], 3),
        "wall_seconds": round(settled_seconds, 2),
    }


async def e2e_section(world: Stack, plan: dict[int, int]) -> dict[str, Any]:
    await drive(world, 8, 40)  # warm-up: connections, prepared statements, JIT-free caches
    return {str(clients): await drive(world, clients, payments) for clients, payments in plan.items()}


async def latency_section(world: Stack, latency_ms: int, clients: int, payments: int) -> dict[str, Any]:
    """Payment→forwarded with every Blink call answered `latency_ms` late (the simulator's latency setting).

    A 3-leg payment makes 7 Blink calls after the customer paid (the POS invoice's status, then per leg an
    invoice on the recipient's behalf and its payment): run one after another they cost 7 × the latency,
    with the legs concurrent about 3 ×.
    """
    async with httpx.AsyncClient(base_url=world.sim.url, timeout=30) as control:
        (await control.post("/sim/latency", json={"latencyMs": latency_ms})).raise_for_status()
        try:
            run = await drive(world, clients, payments)
        finally:
            (await control.post("/sim/latency", json={"latencyMs": 0})).raise_for_status()
    return {"blink_latency_ms": latency_ms, "clients": clients, "payments": payments, "settled": run["settled"],
            "errors": run["errors"], "payment_to_forwarded": run["payment_to_forwarded"],
            "payment_to_forwarded_p50_in_latencies": ratio(run["payment_to_forwarded"]["p50_ms"], latency_ms)}


async def memory_section(world: Stack, payments: int, clients: int = 64) -> dict[str, Any]:
    """Service RSS after `payments` more payments, twice; growth beyond noise would be a leak."""
    before = rss_mb(world.service.pid)
    first = await drive(world, clients, payments, settle_timeout=3600)
    after_first = rss_mb(world.service.pid)
    second = await drive(world, clients, payments, settle_timeout=3600)
    after_second = rss_mb(world.service.pid)
    return {
        "payments_per_round": payments,
        "rss_mb_start": before,
        "rss_mb_after_first": after_first,
        "rss_mb_after_second": after_second,
        "growth_second_round_mb": round(after_second - after_first, 1),
        "growth_second_round_pct": round((after_second - after_first) * 100 / after_first, 1) if after_first else None,
        "rounds": [{k: first[k] for k in ("settled", "settled_per_second", "errors", "first_errors")},
                   {k: second[k] for k in ("settled", "settled_per_second", "errors", "first_errors")}],
    }


async def stats_latency(service_url: str, redis_url: str, prefix: str, calls: int) -> dict[str, Any]:
    """GET /api/stats with the Redis stats cache emptied before each call (PostgreSQL answers), and cached."""
    import redis.asyncio as aioredis

    raw = aioredis.from_url(redis_url)
    uncached: list[float] = []
    cached: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=service_url, timeout=60) as client:
            (await client.get("/api/stats")).raise_for_status()
            for _ in range(calls):
                await raw.delete(f"{prefix}stats:daily:{datetime.now(UTC).date().isoformat()}")
                t0 = time.perf_counter()
                (await client.get("/api/stats")).raise_for_status()
                uncached.append((time.perf_counter() - t0) * 1000)
            for _ in range(calls):
                t0 = time.perf_counter()
                (await client.get("/api/stats")).raise_for_status()
                cached.append((time.perf_counter() - t0) * 1000)
    finally:
        await raw.aclose()
    return {"uncached": summary(uncached), "cached": summary(cached)}


async def stats_on(world: Stack, servers: Servers, database_url: str, data_dir: Path, calls: int) -> dict[str, Any]:
    """The stats endpoint of a second service process on another database (e.g. the 1-million-row one)."""
    prefix = servers.prefix + "big:"
    service = await start_service(world.sim, world.pos, database_url, servers.redis_url, prefix, data_dir,
                                  name="service-big", webhook=False)
    try:
        return await stats_latency(service.url, servers.redis_url, prefix, calls)
    finally:
        service.stop()
