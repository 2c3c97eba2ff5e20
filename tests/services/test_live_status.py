"""Payment status and its event stream served from Redis: no PostgreSQL per poll, pushed by pub/sub."""

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.services.conftest import World, service_settings
from tests.support.pg_queries import QueryCounter
from tests.support.tcp_proxy import behind, proxy_for
from tipsplit.http.app import create_app
from tipsplit.runtime.assembly import Runtime
from tipsplit.serving import BackgroundServer

TWO_WAY = [{"username": "alice", "share": 60}, {"username": "bob", "share": 40}]
# The poller and reconciler read pending payments on their own; here only the webhook detects payments.
QUIET = {"poll_interval_seconds": 3600, "reconcile_interval_seconds": 3600}


def runtime_of(server: BackgroundServer) -> Runtime:
    return server.app.state.runtime  # type: ignore[no-any-return]


async def read_stream(client: httpx.AsyncClient, payment_hash: str, seen: list[dict[str, Any]]) -> None:
    """Collect the stream's `status` events until the server ends it."""
    async with client.stream("GET", f"/api/payment-status/{payment_hash}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))


async def until(condition: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


@pytest.mark.settings(**QUIET)
async def test_status_polls_of_an_active_payment_make_no_postgresql_query(world: World) -> None:
    rt = runtime_of(world.service)
    async with world.http() as client:
        sale = await world.create_invoice(client, baseAmount=1_000, tipPercent=10, tipRecipients=TWO_WAY)
        ph = sale["paymentHash"]
        first = await world.status(client, ph)
        with QueryCounter(rt.pg, about=ph) as queries:
            for _ in range(25):
                assert await world.status(client, ph) == first
            assert await queries.count() == 0, queries.statements
        await world.pay(sale["paymentRequest"])
        done = await world.wait_for_status(client, ph, {"completed"})
        assert [leg["status"] for leg in done["legs"]] == ["succeeded"] * 3
        assert done["events"][-1]["type"] == "completed"
        metrics = await world.metrics(client)
    hits = next(float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith('tipsplit_redis_cache_total{result="hit"}'))
    assert hits >= 25


@pytest.mark.settings(**QUIET)
async def test_event_streams_are_pushed_by_pub_sub_without_polling(world: World) -> None:
    rt = runtime_of(world.service)
    async with world.http() as client:
        sales = [await world.create_invoice(client, baseAmount=700, tipPercent=10, tipRecipients=TWO_WAY)
                 for _ in range(3)]
        seen: dict[str, list[dict[str, Any]]] = {sale["paymentHash"]: [] for sale in sales}
        readers = [asyncio.create_task(read_stream(client, ph, events)) for ph, events in seen.items()]
        await until(lambda: all(seen.values()) and rt.store.feed.watching == 3 and rt.store.feed.live)
        with QueryCounter(rt.pg) as queries:
            await asyncio.sleep(1.5)
            assert await queries.count() == 0, "idle streams read nothing"
        await world.pay(sales[0]["paymentRequest"])
        await asyncio.wait_for(readers[0], 30)
        assert [v["status"] for v in seen[sales[0]["paymentHash"]]][-1] == "completed", "the stream ends when final"
        assert rt.store.feed.notices > 0
        assert not readers[1].done() and not readers[2].done(), "unpaid sales' streams stay open"
        for reader in readers[1:]:
            reader.cancel()
        await asyncio.gather(*readers[1:], return_exceptions=True)
    for views in seen.values():
        assert "userWalletId" not in json.dumps(views) and "events" not in views[0]


@pytest.mark.single_redis
async def test_a_stream_survives_redis_going_away_by_reading(world: World) -> None:
    """A second instance reaches Redis through a proxy that is cut mid-stream; its stream polls and ends."""
    proxy = proxy_for(world.settings.redis_url or "")
    port = await proxy.start()
    settings = service_settings(world.sim, world.pos, world.settings.database_url or "",
                                behind(world.settings.redis_url or "", port), world.settings.redis_key_prefix,
                                world.settings.data_dir / "second", **QUIET)
    second = BackgroundServer(create_app(settings))
    await second.start()
    world.services.append(second)
    rt = runtime_of(second)
    try:
        async with world.http() as first, world.http(1) as client:
            sale = await world.create_invoice(first, baseAmount=800, tipPercent=10, tipRecipients=TWO_WAY)
            seen: list[dict[str, Any]] = []
            reader = asyncio.create_task(read_stream(client, sale["paymentHash"], seen))
            await until(lambda: bool(seen) and rt.store.feed.live)
            await proxy.stop()
            await until(lambda: not rt.store.feed.live)
            await world.pay(sale["paymentRequest"])  # the first instance settles it, on the real Redis
            await asyncio.wait_for(reader, 30)
            assert seen[-1]["status"] == "completed" and not rt.store.feed.live, "read from PostgreSQL while down"
            await proxy.start()
            await until(lambda: rt.store.feed.live, timeout=15)
    finally:
        await proxy.stop()
