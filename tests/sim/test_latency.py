"""The latency setting: every GraphQL call over HTTP is answered N ms late, set at start or through /sim/latency."""

import time

import httpx

from tests.sim import documents as doc
from tests.sim.conftest import Sim
from tipsplit.sim.server import SimServer


async def _timed_me(http: httpx.AsyncClient, key: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": doc.ME}, headers={"X-API-KEY": key})
    return (time.perf_counter() - started) * 1000, response.json()


async def test_latency_set_at_start_delays_every_answer_and_keeps_it_the_same() -> None:
    async with SimServer(seed=3, latency_ms=150) as server, httpx.AsyncClient(base_url=server.url) as http:
        account = (await http.post("/sim/accounts", json={"username": "slow_start"})).json()
        assert (await http.get("/sim/latency")).json() == {"latencyMs": 150}
        elapsed, body = await _timed_me(http, account["apiKey"])
        assert elapsed >= 150
        assert body["data"]["me"]["username"] == "slow_start"


async def test_latency_through_the_control_api(sim: Sim) -> None:
    account = await sim.account()
    try:
        assert (await sim.http.post("/sim/latency", json={"latencyMs": 200})).json() == {"latencyMs": 200}
        slow, body = await _timed_me(sim.http, account.api_key)
        assert slow >= 200 and body["data"]["me"]["username"] == account.username
        # control calls are not GraphQL calls: they answer at once
        started = time.perf_counter()
        await sim.http.get(f"/sim/wallets/{account.btc_wallet_id}")
        assert (time.perf_counter() - started) * 1000 < 200
    finally:
        assert (await sim.http.post("/sim/latency", json={"latencyMs": 0})).json() == {"latencyMs": 0}
    fast, _ = await _timed_me(sim.http, account.api_key)
    assert fast < 200


async def test_a_negative_latency_is_refused(sim: Sim) -> None:
    response = await sim.http.post("/sim/latency", json={"latencyMs": -1})
    assert response.status_code == 400
    assert (await sim.http.get("/sim/latency")).json() == {"latencyMs": 0}
