"""The simulator's CPU per 3-leg payment, alone: `python -m bench.sim_cpu [--payments N] [--concurrency N]`.

Section 3 runs the simulator beside the service and PostgreSQL on the same cores, so its CPU there
moves with theirs. Here a `tipsplit sim` process answers exactly the calls the service makes for one
payment (the POS invoice, the customer's payment through /sim/pay, the invoice's status, then per leg
an invoice on the recipient's behalf and its payment: 8 GraphQL calls) and delivers a signed webhook
per settled invoice to a local receiver; its CPU is read from /proc. The fixed Python loop of
`bench.reference` is timed beside it.
"""

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import cpu_seconds
from bench.e2e import free_port
from bench.reference import python_loop
from tipsplit.blink.client import BlinkClient

LEGS = (("merchant", 1_000), ("alice", 150), ("bob", 150))


async def _wait_up(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def measure(payments: int, concurrency: int, warmup: int = 50) -> dict[str, Any]:
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "tipsplit", "sim", "--port", str(port), "--no-rate-limits"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    received = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_up(session, base + "/sim/webhooks")
            accounts: dict[str, Any] = {}
            for name in ("pos", *(who for who, _ in LEGS)):
                async with session.post(base + "/sim/accounts", json={"username": name}) as response:
                    accounts[name] = await response.json()
            secret = "whsec_" + base64.b64encode(b"tipsplit-bench-sim-cpu-secret-32").decode()
            async with session.post(base + "/sim/webhooks", json={
                "url": f"http://127.0.0.1:{hook_port}/hook", "secret": secret,
                "accountId": accounts["pos"]["accountId"],
            }) as response:
                response.raise_for_status()
            async with BlinkClient(base + "/graphql", accounts["pos"]["apiKey"]) as pos:
                wallet = accounts["pos"]["btcWalletId"]

                async def payment(number: int) -> None:
                    invoice = await pos.create_invoice(wallet, 1_300)
                    async with session.post(base + "/sim/pay", json={"paymentRequest": invoice.payment_request}) as r:
                        r.raise_for_status()
                    await pos.invoice_status_by_hash(invoice.payment_hash)
                    for who, amount in LEGS:
                        leg = await pos.create_invoice_on_behalf_of_recipient(
                            accounts[who]["btcWalletId"], amount, external_id=f"bench-{number}-{who}")
                        await pos.pay_invoice(wallet, leg.payment_request)

                for number in range(payments, payments + warmup):
                    await payment(number)
                work = iter(range(payments))

                async def worker() -> None:
                    for number in work:
                        await payment(number)

                cpu_before, started = cpu_seconds(sim.pid), time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                await asyncio.sleep(0.5)  # the last webhooks
                cpu = cpu_seconds(sim.pid) - cpu_before
                wall = time.perf_counter() - started
    finally:
        sim.terminate()
        sim.wait(15)
        await runner.cleanup()
    loop_ms = python_loop()
    per_payment = cpu * 1000 / payments
    return {"payments": payments, "concurrency": concurrency, "webhooks_received": received,
            "simulator_cpu_ms_per_payment": round(per_payment, 2), "wall_ms_per_payment": round(wall * 1000 / payments, 2),
            "python_loop_ms": loop_ms, "simulator_over_python_loop": round(per_payment / loop_ms, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(measure(args.payments, args.concurrency)), indent=1))


if __name__ == "__main__":
    main()
