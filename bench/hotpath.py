"""Section 6, the hot read path: PostgreSQL round trips per payment-status poll, and the CPU of idle streams.

A service process of its own reaches PostgreSQL through a counting TCP proxy
(tests/support/tcp_proxy.py: every chunk a client sends is one round trip),
with its poller and reconciler slowed to once an hour so that only the polls
and the metrics flusher talk to PostgreSQL; an idle stretch of the same length
is measured first and subtracted. Polls are made on a pending sale, with its
live view in Redis (hit) and with the view deleted before each poll (miss).
Then N server-sent-event streams are opened on a few pending sales and the
service's CPU (/proc) is read over a window with them open against the same
window with none.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench.common import Servers, cpu_seconds, summary
from bench.e2e import SPLIT, Stack, start_service
from tests.support.tcp_proxy import behind, proxy_for

QUIET = {"POLL_INTERVAL_SECONDS": "3600", "RECONCILE_INTERVAL_SECONDS": "3600"}
# Pending sales the streams watch: few, so that the POS account's invoice budget is left to the other sections.
SALES = 2


async def _sale(client: httpx.AsyncClient, world: Stack) -> str:
    body = {"userWalletId": world.merchant["btcWalletId"], "apiKey": world.merchant["apiKey"],
            "baseAmount": 1_000, "tipAmount": 100, "tipRecipients": SPLIT}
    response = await client.post("/api/blink/create-invoice", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"create-invoice answered {response.status_code}: {response.text}")
    return str(response.json()["paymentHash"])


async def _round_trips(proxy: Any, seconds: float) -> int:
    before = proxy.client_reads
    await asyncio.sleep(seconds)
    return int(proxy.client_reads - before)


async def _polls(client: httpx.AsyncClient, proxy: Any, payment_hash: str, polls: int,
                 forget: aioredis.Redis | None, view_key: str) -> dict[str, Any]:
    """Round trips to PostgreSQL during `polls` polls, less those of an idle stretch as long (background work)."""
    latencies: list[float] = []
    before = proxy.client_reads
    started = time.perf_counter()
    for _ in range(polls):
        if forget is not None:
            await forget.delete(view_key)
        t0 = time.perf_counter()
        (await client.get(f"/api/payment-status/{payment_hash}")).raise_for_status()
        latencies.append((time.perf_counter() - t0) * 1000)
    await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    during = proxy.client_reads - before
    idle = await _round_trips(proxy, elapsed)
    return {"polls": polls, "round_trips": int(during), "idle_round_trips": idle,
            "round_trips_per_poll": round(max(0, during - idle) / polls, 3), "latency": summary(latencies)}


async def _stream(client: httpx.AsyncClient, payment_hash: str, opened: asyncio.Event, counter: list[int]) -> None:
    async with client.stream("GET", f"/api/payment-status/{payment_hash}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                counter[0] += 1
                if counter[0] >= counter[1]:
                    opened.set()


async def _cpu_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - before


async def hot_path_section(world: Stack, servers: Servers, data_dir: Path, polls: int, streams: int,
                           window_seconds: float) -> dict[str, Any]:
    proxy = proxy_for(world.database_url)
    port = await proxy.start()
    service = await start_service(world.sim, world.pos, behind(world.database_url, port), servers.redis_url,
                                  servers.prefix, data_dir / "hot", name="hot", webhook=False, env_overrides=QUIET)
    world.extra.append(service)
    raw = aioredis.from_url(servers.redis_url)
    limits = httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
            sales = [await _sale(client, world) for _ in range(SALES)]
            view_key = f"{servers.prefix}live:view:{{{sales[0]}}}"
            await client.get(f"/api/payment-status/{sales[0]}")
            await asyncio.sleep(1.0)
            hit = await _polls(client, proxy, sales[0], polls, None, view_key)
            miss = await _polls(client, proxy, sales[0], max(1, polls // 4), raw, view_key)
            idle_cpu = await _cpu_over(service.pid, window_seconds)
            opened = asyncio.Event()
            counter = [0, streams]
            tasks = [asyncio.create_task(_stream(client, sales[i % len(sales)], opened, counter))
                     for i in range(streams)]
            await asyncio.wait_for(opened.wait(), 120)
            await asyncio.sleep(1.0)
            reads_before = proxy.client_reads
            streams_cpu = await _cpu_over(service.pid, window_seconds)
            stream_round_trips = proxy.client_reads - reads_before
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await raw.aclose()
        service.stop()
        world.extra.remove(service)
        await proxy.stop()
    return {
        "status_poll_hit": hit,
        "status_poll_miss": miss,
        "streams": {
            "open": streams, "payments": len(sales), "window_seconds": window_seconds,
            "service_cpu_ms_per_s_without": round(idle_cpu * 1000 / window_seconds, 2),
            "service_cpu_ms_per_s_with": round(streams_cpu * 1000 / window_seconds, 2),
            "postgres_round_trips_in_window": int(stream_round_trips),
        },
    }
