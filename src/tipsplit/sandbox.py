"""Sandbox mode: the bundled Blink simulator with a POS account, a merchant and two tip recipients.

It lets `make run` on a fresh machine give a working POS backend, and is
said loudly in the logs so nobody mistakes it for real money.
"""

from dataclasses import dataclass

import httpx

from tipsplit.config import Settings
from tipsplit.sim.server import SimServer

RECIPIENTS = ("alice_tips", "bob_tips")


@dataclass(frozen=True)
class SandboxAccount:
    username: str
    api_key: str
    wallet_id: str

    def public(self) -> dict[str, str]:
        return {"username": self.username, "apiKey": self.api_key, "walletId": self.wallet_id}


@dataclass
class Sandbox:
    """A running simulator and the accounts made in it."""

    server: SimServer
    pos: SandboxAccount
    merchant: SandboxAccount
    recipients: list[SandboxAccount]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def graphql_url(self) -> str:
        return self.server.graphql_url

    def credentials(self) -> dict[str, object]:
        """What `GET /api/sandbox` shows: enough to make a sale by hand."""
        return {
            "simUrl": self.url,
            "pos": self.pos.public(),
            "merchant": self.merchant.public(),
            "recipients": [r.public() for r in self.recipients],
        }

    async def stop(self) -> None:
        await self.server.stop()


async def _account(http: httpx.AsyncClient, username: str, balance: int) -> SandboxAccount:
    response = await http.post("/sim/accounts", json={"username": username, "balance": balance})
    response.raise_for_status()
    body = response.json()
    return SandboxAccount(body["username"], body["apiKey"], body["btcWalletId"])


async def start_sandbox(settings: Settings, webhook_secret: str, public_url: str | None) -> Sandbox:
    """Start the simulator on SIM_PORT, create the accounts, and point its webhooks at us."""
    server = SimServer(
        host="127.0.0.1", port=settings.sim_port, seed=settings.sim_seed, rate_limits=settings.sandbox_rate_limits
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            pos = await _account(http, "blinkpos", 0)
            merchant = await _account(http, "merchant", 0)
            recipients = [await _account(http, name, 0) for name in RECIPIENTS]
            if public_url:
                response = await http.post(
                    "/sim/webhooks", json={"url": f"{public_url}/api/blink/webhook", "secret": webhook_secret}
                )
                response.raise_for_status()
    except BaseException:
        await server.stop()
        raise
    return Sandbox(server, pos, merchant, recipients)
