"""Three `python -m tipsplit serve` processes on shared PostgreSQL and Redis, against one simulator.

The simulator runs in the test's event loop; each service is a real process
(SIGKILL-able, restartable on the same port, so the simulator's webhook
endpoints stay valid). PostgreSQL and/or Redis can be put behind a
`TcpProxy` so a scenario can cut them for these services alone.
"""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.services.conftest import ALL_SCOPES, ENCRYPTION_KEYS, MERCHANT_SCOPES, WEBHOOK_SECRET, Account
from tests.support.tcp_proxy import TcpProxy, behind, proxy_for, unused_port
from tipsplit.blink.webhook import signed_headers
from tipsplit.sim.server import SimServer
from tipsplit.store.redis_client import connect_redis

RECIPIENTS = ("alice", "bob", "carol")
START_TIMEOUT = 40.0


@dataclass
class Instance:
    """One service process; `port` is kept across restarts."""

    index: int
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Sale:
    """An invoice the POS asked for (and, once `paid`, that the customer paid)."""

    payment_hash: str
    payment_request: str
    satoshis: int
    instance: int
    paid: bool = False


@dataclass
class Cluster:
    sim: SimServer
    sim_http: httpx.AsyncClient
    pos: Account
    merchant: Account
    recipients: dict[str, Account]
    database_url: str          # the real database, for the invariant check
    redis_url: str             # the real Redis
    prefix: str
    root: Path
    env: dict[str, str]
    instances: list[Instance] = field(default_factory=list)
    pg_proxy: TcpProxy | None = None
    redis_proxy: TcpProxy | None = None
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))
    extra_accounts: list[Account] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(int.from_bytes(os.urandom(4), "big")))

    # -- processes -------------------------------------------------------------

    async def start(self, index: int) -> None:
        inst = self.instances[index]
        env = {**self.env, "PORT": str(inst.port), "TIPSPLIT_DATA_DIR": str(inst.data_dir),
               "TIP_STORE_FILE": str(inst.data_dir / "tip-store.json")}
        with inst.log.open("ab") as log:
            inst.process = subprocess.Popen(
                [sys.executable, "-m", "tipsplit", "serve", "--port", str(inst.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        inst.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if inst.process.poll() is not None:
                raise AssertionError(f"instance {index} exited with {inst.process.returncode}; see {inst.log}")
            try:
                if (await self.client.get(f"{inst.url}/api/health", timeout=3)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"instance {index} not healthy in {START_TIMEOUT}s; see {inst.log}")
            await asyncio.sleep(0.2)

    def kill(self, index: int) -> None:
        """SIGKILL: no shutdown code runs, in-flight settlements stop wherever they are."""
        process = self.instances[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    async def stop_all(self) -> None:
        for inst in self.instances:
            if inst.alive:
                assert inst.process is not None
                inst.process.send_signal(signal.SIGTERM)
        for inst in self.instances:
            if inst.process is not None:
                try:
                    await asyncio.to_thread(inst.process.wait, 20)
                except subprocess.TimeoutExpired:
                    inst.process.kill()
                    inst.process.wait(5)

    def live(self) -> list[Instance]:
        return [inst for inst in self.instances if inst.alive]

    def pick(self) -> Instance:
        return self.rng.choice(self.live() or self.instances)

    # -- the POS and the customer ----------------------------------------------

    def order(self, merchant: Account | None = None) -> dict[str, Any]:
        """A random sale: a base, a tip (or none), split between 1-3 recipients."""
        merchant = merchant or self.merchant
        base = self.rng.randint(50, 20_000)
        body: dict[str, Any] = {"userWalletId": merchant.wallet_id, "apiKey": merchant.api_key, "baseAmount": base}
        if self.rng.random() < 0.85:
            names = self.rng.sample(RECIPIENTS, self.rng.randint(1, 3))
            shares = _shares(self.rng, len(names))
            if self.rng.random() < 0.5:
                body["tipAmount"] = self.rng.randint(1, 3_000)
            else:
                body["tipPercent"] = str(self.rng.choice([5, 10, 12.5, 15, 18, 20]))
            body["tipRecipients"] = [{"username": n, "share": str(s)} for n, s in zip(names, shares, strict=True)]
        return body

    async def create_invoice(self, body: dict[str, Any], attempts: int = 8) -> Sale | None:
        """POST create-invoice to a random live instance; another one if that one is down (a POS would retry)."""
        for _ in range(attempts):
            inst = self.pick()
            try:
                response = await self.client.post(f"{inst.url}/api/blink/create-invoice", json=body)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 200:
                data = response.json()
                return Sale(data["paymentHash"], data["paymentRequest"], data["satoshis"], inst.index)
            assert response.status_code in (429, 502, 503), response.text
            assert response.json()["error"]
            await asyncio.sleep(0.3)
        return None

    async def pay(self, sale: Sale) -> None:
        """The customer pays over Lightning (the simulator then notifies every instance)."""
        response = await self.sim_http.post("/sim/pay", json={"paymentRequest": sale.payment_request})
        assert response.status_code == 200, response.text
        sale.paid = True

    async def sell(self, n: int, *, concurrency: int = 6, pay: bool = True) -> list[Sale]:
        """n sales created and (by default) paid, `concurrency` at a time."""
        gate = asyncio.Semaphore(concurrency)
        sales: list[Sale] = []

        async def one() -> None:
            async with gate:
                sale = await self.create_invoice(self.order())
                if sale is None:
                    return
                sales.append(sale)
                if pay:
                    await self.pay(sale)

        await asyncio.gather(*(one() for _ in range(n)))
        return sales

    async def webhook(self, inst: Instance, payment_hash: str, msg_id: str | None = None) -> httpx.Response | None:
        """A signed `receive.lightning` webhook for this payment, as Blink (via Svix) would send it."""
        body = json.dumps({"eventType": "receive.lightning", "transaction": {
            "initiationVia": {"type": "Lightning", "paymentHash": payment_hash}, "settlementAmount": 1}}).encode()
        headers = signed_headers(WEBHOOK_SECRET, msg_id or f"msg_{self.rng.getrandbits(64):x}", body)
        try:
            return await self.client.post(f"{inst.url}/api/blink/webhook", content=body, headers=headers)
        except httpx.HTTPError:
            return None

    async def forward(self, inst: Instance, payment_hash: str) -> httpx.Response | None:
        try:
            return await self.client.post(
                f"{inst.url}/api/blink/forward-with-tips",
                json={"paymentHash": payment_hash, "baseAmount": 1, "tipAmount": 10**9},
            )
        except httpx.HTTPError:
            return None

    async def fault(self, **rule: Any) -> None:
        response = await self.sim_http.post("/sim/faults", json=rule)
        assert response.status_code == 201, response.text

    async def clear_faults(self) -> None:
        (await self.sim_http.delete("/sim/faults")).raise_for_status()

    async def ledger(self) -> dict[str, Any]:
        response = await self.sim_http.get("/sim/ledger")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def api_keys(self) -> list[str]:
        accounts = [self.pos, self.merchant, *self.recipients.values(), *self.extra_accounts]
        return [a.api_key for a in accounts]

    async def add_merchant(self, username: str) -> Account:
        account = await _account(self.sim_http, username, MERCHANT_SCOPES)
        self.extra_accounts.append(account)
        return account

    async def sim_clock(self, seconds: float) -> float:
        response = await self.sim_http.post("/sim/clock", json={"advanceSeconds": seconds})
        response.raise_for_status()
        return float(response.json()["now"])

    async def flush_redis_prefix(self) -> int:
        """What a Redis restart without persistence does to our data: every key under our prefix is gone."""
        client = connect_redis(self.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{self.prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
            return len(keys)
        finally:
            await client.aclose()

    def logs(self) -> list[Path]:
        return [inst.log for inst in self.instances]


def _shares(rng: random.Random, count: int) -> list[Decimal]:
    if count == 1:
        return [Decimal(100)]
    cuts = sorted(rng.sample(range(1, 100), count - 1))
    return [Decimal(b - a) for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]


async def _account(http: httpx.AsyncClient, username: str, scopes: tuple[str, ...] = ALL_SCOPES) -> Account:
    response = await http.post("/sim/accounts", json={"username": username, "balance": 0, "scopes": list(scopes)})
    response.raise_for_status()
    body = response.json()
    return Account(body["username"], body["apiKey"], body["btcWalletId"])


def base_env(**overrides: Any) -> dict[str, str]:
    """The environment every instance shares; scenario overrides by setting name (upper-cased)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "BLINK", "RATE_LIMIT", "FORWARD_", "INVOICE_", "TIPSPLIT_"))}
    env.update(
        ENCRYPTION_KEYS=ENCRYPTION_KEYS,
        BLINK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        POLL_INTERVAL_SECONDS="0.5",
        RECONCILE_INTERVAL_SECONDS="0.3",
        CLAIM_LEASE_SECONDS="5",
        LEG_RETRY_BASE_SECONDS="0.2",
        MAX_LEG_ATTEMPTS="6",
        RATE_LIMIT_PER_WALLET="100000",
        RATE_LIMIT_PER_IP="100000",
        FORWARD_RATE_LIMIT_PER_IP="100000",
        # The simulator runs without Blink's invoice limits here (a load test on one POS account), so the
        # service's own invoice budget is opened to match.
        BLINK_INVOICE_LIMIT_POINTS="100000000",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


async def open_cluster(
    root: Path, database_url: str, redis_url: str, prefix: str, *, instances: int = 3,
    proxy_postgres: bool = False, proxy_redis: bool = False, sim_latency_ms: int = 0, **settings: Any,
) -> Cluster:
    """Start the simulator, its accounts, the proxies asked for, and the service processes.

    `sim_latency_ms` answers every GraphQL call that late (as a distant Blink would), so that a
    scenario which must strike while legs are in flight has a window to strike in.
    """
    # Blink's invoice limits are off until the service paces its own invoice creations.
    sim = SimServer(seed=int.from_bytes(os.urandom(2), "big"), rate_limits=False, latency_ms=sim_latency_ms)
    await sim.start()
    # The embedded simulator closes idle connections after uvicorn's 5 s, httpx keeps them 5 s too: a request
    # on a connection closed under it is a ReadError (seen after the 3 s PostgreSQL cut). Drop them sooner.
    sim_http = httpx.AsyncClient(base_url=sim.url, timeout=60, limits=httpx.Limits(keepalive_expiry=1.0))
    pos = await _account(sim_http, "blinkpos")
    merchant = await _account(sim_http, "merchant", MERCHANT_SCOPES)
    recipients = {name: await _account(sim_http, name) for name in RECIPIENTS}
    pg_proxy = redis_proxy = None
    service_db, service_redis = database_url, redis_url
    if proxy_postgres:
        pg_proxy = proxy_for(database_url)
        service_db = behind(database_url, await pg_proxy.start())
    if proxy_redis:
        redis_proxy = proxy_for(redis_url)
        service_redis = behind(redis_url, await redis_proxy.start())
    env = base_env(**settings)
    env.update(
        DATABASE_URL=service_db, REDIS_URL=service_redis, REDIS_KEY_PREFIX=prefix,
        BLINK_API_URL=sim.graphql_url, BLINKPOS_API_KEY=pos.api_key, BLINKPOS_BTC_WALLET_ID=pos.wallet_id,
    )
    cluster = Cluster(sim, sim_http, pos, merchant, recipients, database_url, redis_url, prefix, root, env,
                      pg_proxy=pg_proxy, redis_proxy=redis_proxy)
    for index in range(instances):
        data_dir = root / f"instance-{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        cluster.instances.append(Instance(index, unused_port(), data_dir, root / f"instance-{index}.log"))
    try:
        # One first (it migrates), then the rest together.
        await cluster.start(0)
        await asyncio.gather(*(cluster.start(i) for i in range(1, instances)))
        for inst in cluster.instances:
            response = await sim_http.post(
                "/sim/webhooks", json={"url": f"{inst.url}/api/blink/webhook", "secret": WEBHOOK_SECRET}
            )
            response.raise_for_status()
    except BaseException:
        await close_cluster(cluster)
        raise
    return cluster


async def close_cluster(cluster: Cluster) -> None:
    await cluster.stop_all()
    await cluster.client.aclose()
    await cluster.sim_http.aclose()
    await cluster.sim.stop()
    for proxy in (cluster.pg_proxy, cluster.redis_proxy):
        if proxy is not None:
            await proxy.stop()
