"""Sandbox mode: the bundled Blink simulator with a POS account, a merchant and three tip recipients.

It lets `make run` on a fresh machine give a working POS backend, and is
said loudly in the logs so nobody mistakes it for real money.

The simulator's ledger lives in the data directory beside the embedded
database (`sandbox-simulator.pickle`, saved within a second of each change
and at shutdown), so a restart keeps the same accounts, keys, invoices and
balances, and the credentials `/api/sandbox` gave out keep working. Each
start draws a fresh seed, so a payment hash is never handed out twice, even
when a crash lost the last second of the ledger. While the service runs,
`sandbox.json` says where its simulator listens and with which POS key, for
the operator commands (`tipsplit payments retry`).
"""

import asyncio
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tipsplit.settings import Settings
from tipsplit.sim import persist
from tipsplit.sim.server import SimServer

log = structlog.get_logger(__name__)

RECIPIENTS = ("alice_tips", "bob_tips", "carol_tips")
# The POS key settles (checks, creates and pays invoices); everyone else's key only reads, as tipsplit asks of merchants.
POS_SCOPES = ["READ", "RECEIVE", "WRITE"]
MERCHANT_SCOPES = ["READ"]
SNAPSHOT_FILE = "sandbox-simulator.pickle"
RUNNING_FILE = "sandbox.json"
SAVE_INTERVAL_SECONDS = 1.0


class SandboxNotRunning(RuntimeError):
    """No sandbox service runs with this data directory, so there is no simulator to talk to."""


@dataclass(frozen=True)
class SandboxAccount:
    username: str
    api_key: str
    wallet_id: str

    def public(self) -> dict[str, str]:
        return {"username": self.username, "apiKey": self.api_key, "walletId": self.wallet_id}


@dataclass(frozen=True)
class SandboxAccounts:
    pos: SandboxAccount
    merchant: SandboxAccount
    recipients: tuple[SandboxAccount, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SandboxAccounts":
        return cls(
            SandboxAccount(**data["pos"]),
            SandboxAccount(**data["merchant"]),
            tuple(SandboxAccount(**r) for r in data["recipients"]),
        )

    def all(self) -> tuple[SandboxAccount, ...]:
        return (self.pos, self.merchant, *self.recipients)


@dataclass(frozen=True)
class PosAccess:
    """Where Blink answers, and the POS account's key and wallet there: what an operator command needs to settle."""

    graphql_url: str
    pos_api_key: str
    pos_wallet_id: str


class _ChangeWatch:
    """Marks the simulator's ledger as changed whenever a request that may change it has been answered."""

    def __init__(self, app: ASGIApp, mark: Callable[[], None]) -> None:
        self.app = app
        self.mark = mark

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET":
            await self.app(scope, receive, send)
            return

        async def send_then_mark(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                self.mark()

        await self.app(scope, receive, send_then_mark)


@dataclass
class Sandbox:
    """A running simulator, the accounts made in it, and the task that keeps its ledger on disk."""

    server: SimServer
    accounts: SandboxAccounts
    data_dir: Path
    changed: asyncio.Event
    _saver: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pos(self) -> SandboxAccount:
        return self.accounts.pos

    @property
    def merchant(self) -> SandboxAccount:
        return self.accounts.merchant

    @property
    def recipients(self) -> list[SandboxAccount]:
        return list(self.accounts.recipients)

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

    def save(self) -> None:
        persist.save(self.server.state, self.data_dir / SNAPSHOT_FILE, {"accounts": asdict(self.accounts)})

    def start_saving(self) -> None:
        self._saver = asyncio.get_running_loop().create_task(self._save_changes(), name="sandbox-snapshot")

    def _save_or_warn(self) -> None:
        try:
            self.save()
        except OSError as exc:
            log.warning("sandbox.snapshot_failed", error=f"{type(exc).__name__}: {exc}")

    async def _save_changes(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            self._save_or_warn()
            await asyncio.sleep(SAVE_INTERVAL_SECONDS)

    async def stop(self) -> None:
        """Stop the simulator, then save its final ledger; the running-sandbox file goes with it."""
        if self._saver is not None:
            self._saver.cancel()
            await asyncio.gather(self._saver, return_exceptions=True)
        await self.server.stop()
        self._save_or_warn()
        (self.data_dir / RUNNING_FILE).unlink(missing_ok=True)


async def _account(http: httpx.AsyncClient, username: str, scopes: list[str]) -> SandboxAccount:
    response = await http.post("/sim/accounts", json={"username": username, "balance": 0, "scopes": scopes})
    response.raise_for_status()
    body = response.json()
    return SandboxAccount(body["username"], body["apiKey"], body["btcWalletId"])


async def _new_accounts(http: httpx.AsyncClient) -> SandboxAccounts:
    pos = await _account(http, "blinkpos", POS_SCOPES)
    merchant = await _account(http, "merchant", MERCHANT_SCOPES)
    recipients = tuple([await _account(http, name, MERCHANT_SCOPES) for name in RECIPIENTS])
    return SandboxAccounts(pos, merchant, recipients)


def _restored_accounts(server: SimServer, data_dir: Path) -> SandboxAccounts | None:
    """The accounts of the saved ledger, if it loads and every saved key still opens its account."""
    extra = persist.load(server.state, data_dir / SNAPSHOT_FILE)
    if extra is None:
        return None
    accounts = SandboxAccounts.from_dict(extra["accounts"])
    if all(server.ledger.authenticate(a.api_key) is not None for a in accounts.all()):
        return accounts
    raise RuntimeError(f"{data_dir / SNAPSHOT_FILE} holds accounts whose keys it does not know; move it away")


def _write_running(sandbox: Sandbox) -> None:
    running = PosAccess(sandbox.graphql_url, sandbox.pos.api_key, sandbox.pos.wallet_id)
    path = sandbox.data_dir / RUNNING_FILE
    with open(path, "w", opener=lambda name, flags: os.open(name, flags, 0o600)) as out:
        json.dump({**asdict(running), "pid": os.getpid()}, out)


def running_sandbox(data_dir: Path) -> PosAccess:
    """Where the sandbox service of this data directory runs its simulator, for operator commands."""
    path = data_dir / RUNNING_FILE
    try:
        data = json.loads(path.read_text())
        return PosAccess(data["graphql_url"], data["pos_api_key"], data["pos_wallet_id"])
    except FileNotFoundError:
        raise SandboxNotRunning(
            f"no sandbox is running with the data directory {data_dir} (no {RUNNING_FILE}): start `tipsplit serve`"
            " with the same TIPSPLIT_DATA_DIR, or set BLINK_API_URL, BLINKPOS_API_KEY and BLINKPOS_BTC_WALLET_ID"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SandboxNotRunning(f"{path} is unreadable ({type(exc).__name__}); restart the sandbox") from None


async def start_sandbox(settings: Settings, webhook_secret: str, public_url: str | None) -> Sandbox:
    """Start the simulator on SIM_PORT with the saved ledger (or new accounts), and point its webhooks at us."""
    server = SimServer(
        host="127.0.0.1", port=settings.sim_port, seed=secrets.randbits(64), rate_limits=settings.sandbox_rate_limits
    )
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    restored = _restored_accounts(server, data_dir)
    changed = asyncio.Event()
    server.app.add_middleware(_ChangeWatch, mark=changed.set)
    server.ledger.add_listener(lambda _event: changed.set())
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            accounts = restored or await _new_accounts(http)
            if public_url:
                response = await http.post(
                    "/sim/webhooks", json={"url": f"{public_url}/api/blink/webhook", "secret": webhook_secret}
                )
                response.raise_for_status()
        sandbox = Sandbox(server, accounts, data_dir, changed)
        sandbox.save()
        _write_running(sandbox)
    except BaseException:
        await server.stop()
        raise
    sandbox.start_saving()
    log.info("sandbox.ledger", restored=restored is not None, snapshot=str(data_dir / SNAPSHOT_FILE))
    return sandbox
