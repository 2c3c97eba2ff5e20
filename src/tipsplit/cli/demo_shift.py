"""`tipsplit demo`: a short POS shift against the sandbox, to see the whole flow in a minute.

It talks to tipsplit only over HTTP, like a POS would: against a running
sandbox (`--url`), or against one it starts in-process (simulator, service,
and embedded PostgreSQL/Redis when no URLs are configured). One tip
recipient's first payment fails and is retried, to show recovery. What each
party received is read from the simulator's wallets, so the printed totals
are the ledger's, not tipsplit's own claim.
"""

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from tipsplit.settings import Settings

SETTLED = frozenset({"completed", "failed", "expired"})
EXTRA_RECIPIENT = "carol_tips"


@dataclass(frozen=True)
class Sale:
    """One customer at the till: the bill, the tip percentage, and who shares the tip."""

    base: int
    tip_percent: int
    recipients: tuple[str, ...]


@dataclass
class Party:
    """A wallet whose takings the demo reports."""

    name: str
    wallet_id: str
    before: int = 0
    after: int = 0

    @property
    def received(self) -> int:
        return self.after - self.before


@dataclass
class ShiftReport:
    """What the shift did: every payment's final state, each party's takings, the service's stats."""

    payments: list[dict[str, Any]] = field(default_factory=list)
    parties: list[Party] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    failing_recipient: str = ""

    @property
    def total_paid(self) -> int:
        return sum(int(p["satoshis"]) for p in self.payments)

    @property
    def total_received(self) -> int:
        return sum(p.received for p in self.parties)


def shift(recipients: list[str]) -> list[Sale]:
    """A dozen sales with different bills, tips and one to three recipients."""
    a, b, c = recipients[:3]
    return [
        Sale(4_200, 15, (a,)),
        Sale(12_500, 20, (a, b)),
        Sale(800, 10, (b,)),
        Sale(23_000, 18, (a, b, c)),
        Sale(5_600, 0, ()),
        Sale(9_999, 25, (c,)),
        Sale(1_500, 12, (b, c)),
        Sale(31_000, 15, (a, c)),
        Sale(2_750, 22, (a, b, c)),
        Sale(640, 50, (a,)),
        Sale(17_300, 10, (b,)),
        Sale(7_777, 17, (c, a)),
    ]


def demo_settings(base: Settings, data_dir: Path) -> Settings:
    """Sandbox settings tuned so the shift settles in seconds; configured databases are kept."""
    return base.model_copy(
        update={
            "blink_api_url": None,
            "blinkpos_api_key": None,
            "blinkpos_btc_wallet_id": None,
            "sim_port": 0,
            "data_dir": data_dir,
            "encryption_keys": "",
            "redis_key_prefix": f"{base.redis_key_prefix}demo:{uuid.uuid4().hex[:8]}:",
            "poll_interval_seconds": 0.3,
            "reconcile_interval_seconds": 0.3,
            "leg_retry_base_seconds": 0.3,
            "claim_lease_seconds": 5,
            "rate_limit_per_wallet": 10_000,
            "rate_limit_per_ip": 10_000,
        }
    )


@asynccontextmanager
async def local_sandbox(settings: Settings) -> AsyncIterator[str]:
    """A sandbox service in this process (simulator, service, embedded servers if needed); yields its URL."""
    from tipsplit.http.app import create_app
    from tipsplit.serving import BackgroundServer

    with tempfile.TemporaryDirectory(prefix="tipsplit-demo-") as data_dir:
        server = BackgroundServer(create_app(demo_settings(settings, Path(data_dir))))
        await server.start()
        try:
            yield server.url
        finally:
            await server.stop()


async def play(service_url: str, timeout: float = 60.0) -> ShiftReport:
    """Play the shift against a sandbox service and collect what happened."""
    async with httpx.AsyncClient(base_url=service_url, timeout=30) as api:
        response = await api.get("/api/sandbox")
        if response.status_code == 404:
            raise DemoError(f"{service_url} is not in sandbox mode; the demo only runs against simulated Blink")
        response.raise_for_status()
        sandbox = response.json()
        async with httpx.AsyncClient(base_url=sandbox["simUrl"], timeout=30) as sim:
            return await _play(api, sim, sandbox, timeout)


class DemoError(RuntimeError):
    """The demo cannot run against what it was pointed at."""


async def _play(api: httpx.AsyncClient, sim: httpx.AsyncClient, sandbox: dict[str, Any], timeout: float) -> ShiftReport:
    merchant = sandbox["merchant"]
    staff = {r["username"]: r["walletId"] for r in sandbox["recipients"]}
    if len(staff) < 3:
        created = await sim.post("/sim/accounts", json={"username": EXTRA_RECIPIENT, "balance": 0})
        if created.status_code >= 400:
            name = f"{EXTRA_RECIPIENT}_{uuid.uuid4().hex[:6]}"
            created = await sim.post("/sim/accounts", json={"username": name, "balance": 0})
        created.raise_for_status()
        staff[created.json()["username"]] = created.json()["btcWalletId"]
    names = sorted(staff)[:3]
    report = ShiftReport(parties=[Party("merchant", merchant["walletId"])] + [Party(n, staff[n]) for n in names])
    for party in report.parties:
        party.before = await _balance(sim, party.wallet_id)
    report.failing_recipient = names[1]
    fault = await sim.post("/sim/faults", json={
        "operation": "lnInvoicePaymentSend", "failure": True, "walletId": staff[names[1]], "count": 1,
    })
    fault.raise_for_status()
    for sale in shift(names):
        body: dict[str, Any] = {
            "userWalletId": merchant["walletId"], "apiKey": merchant["apiKey"],
            "baseAmount": sale.base, "tipPercent": sale.tip_percent,
        }
        if sale.recipients:
            body["tipRecipients"] = [{"username": n} for n in sale.recipients]
        created = await api.post("/api/blink/create-invoice", json=body)
        if created.status_code != 200:
            raise DemoError(f"create-invoice answered {created.status_code}: {created.text[:200]}")
        invoice = created.json()
        paid = await sim.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
        paid.raise_for_status()
        report.payments.append({"paymentHash": invoice["paymentHash"], "satoshis": invoice["satoshis"],
                                "base": sale.base, "tipPercent": sale.tip_percent, "recipients": sale.recipients})
    await _wait_settled(api, report.payments, timeout)
    for party in report.parties:
        party.after = await _balance(sim, party.wallet_id)
    stats = await api.get("/api/stats")
    stats.raise_for_status()
    report.stats = stats.json()
    return report


async def _balance(sim: httpx.AsyncClient, wallet_id: str) -> int:
    response = await sim.get(f"/sim/wallets/{wallet_id}")
    response.raise_for_status()
    return int(response.json()["balance"])


async def _wait_settled(api: httpx.AsyncClient, payments: list[dict[str, Any]], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for payment in payments:
            if payment.get("status") in SETTLED:
                continue
            response = await api.get(f"/api/payment-status/{payment['paymentHash']}")
            response.raise_for_status()
            body = response.json()
            payment["status"] = body["status"]
        if all(p.get("status") in SETTLED for p in payments):
            return
        if asyncio.get_running_loop().time() > deadline:
            open_ = sum(1 for p in payments if p.get("status") not in SETTLED)
            raise DemoError(f"{open_} payment(s) did not settle within {timeout:.0f}s")
        await asyncio.sleep(0.2)


def render(report: ShiftReport, console: Console) -> None:
    """The takings, the payments and the stats, as tables."""
    takings = Table(title="what each party received (simulator wallets)")
    takings.add_column("party")
    takings.add_column("sats", justify="right")
    for party in report.parties:
        label = party.name + (" (failed once, retried)" if party.name == report.failing_recipient else "")
        takings.add_row(label, f"{party.received:,}")
    takings.add_row("total received", f"{report.total_received:,}", end_section=True)
    takings.add_row("total paid by customers", f"{report.total_paid:,}")
    console.print(takings)
    payments = Table(title="payments")
    for column in ("#", "payment hash", "paid", "base", "tip %", "recipients", "status"):
        payments.add_column(column, justify="right" if column in ("#", "paid", "base", "tip %") else "left")
    for i, p in enumerate(report.payments, start=1):
        payments.add_row(str(i), p["paymentHash"][:16] + "…", f"{p['satoshis']:,}", f"{p['base']:,}",
                         str(p["tipPercent"]), ", ".join(p["recipients"]) or "-", p.get("status", "?"))
    console.print(payments)
    stats = Table(title="stats, last 24 hours")
    stats.add_column("measure")
    stats.add_column("value", justify="right")
    for key, value in (report.stats.get("last24Hours") or {}).items():
        stats.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    console.print(stats)
