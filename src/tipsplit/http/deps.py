"""What a route may use, one collaborator of the runtime per dependency, so each signature says what it touches.

The runtime is built once when the app starts (app.py) and only this module reads it: a route names the
collaborators it uses (`invoices: Invoicing`, `limits: Limits`) and never receives the runtime itself.

Every dependency is `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a
thread hop per request. The few collaborators made for the HTTP layer alone (operator gate, page keys,
tills) are built on first use and kept on `app.state`, since the runtime exists only once the app started.
"""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from tipsplit.blink.client import BlinkClient
from tipsplit.http.limits import RequestLimits, client_ip
from tipsplit.http.operator_auth import OperatorGate
from tipsplit.http.sessions import WebKeys, build_keys
from tipsplit.http.views import PublicStatus
from tipsplit.runtime.assembly import Runtime
from tipsplit.runtime.sandbox import Sandbox
from tipsplit.services.detection import Watchers
from tipsplit.services.forwarding import ForwardRequests
from tipsplit.services.invoicing import InvoiceService
from tipsplit.services.merchant_keys import MerchantKeyPolicy
from tipsplit.services.pos_accounts import PosAccounts
from tipsplit.services.settlement import Settler
from tipsplit.services.single_flight import SingleFlight
from tipsplit.services.tills import Tills
from tipsplit.settings import Settings
from tipsplit.store.stack import StoreStack
from tipsplit.store.postgres import PostgresStore

T = TypeVar("T")


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _once(request: Request, name: str, build: Callable[[], T]) -> T:
    """The app's `name`, built by `build` on the first request that needs it."""
    made: T | None = getattr(request.app.state, name, None)
    if made is None:
        made = build()
        setattr(request.app.state, name, made)
    return made


async def _settings(request: Request) -> Settings:
    return _runtime(request).settings


AppSettings = Annotated[Settings, Depends(_settings)]
"""The service's settings (the dashboard shows the attempts a leg may make)."""


async def _store(request: Request) -> StoreStack:
    return _runtime(request).store


Store = Annotated[StoreStack, Depends(_store)]
"""The payment store: PostgreSQL, its Redis caches and counters."""


async def _records(request: Request) -> PostgresStore:
    return _runtime(request).pg


Records = Annotated[PostgresStore, Depends(_records)]
"""PostgreSQL's parts: payments, claims, legs, events, outcomes, reports, api keys, tills."""


async def _invoicing(request: Request) -> InvoiceService:
    return _runtime(request).invoices


Invoicing = Annotated[InvoiceService, Depends(_invoicing)]
"""Turns an order into a stored split and a POS invoice."""


async def _forwarding(request: Request) -> ForwardRequests:
    return _runtime(request).forwards


Forwarding = Annotated[ForwardRequests, Depends(_forwarding)]
"""Settlement asked for by untrusted callers, their Blink checks shared."""


async def _settler(request: Request) -> Settler:
    return _runtime(request).settler


Settling = Annotated[Settler, Depends(_settler)]
"""The settlement engine itself, for the operator's retry."""


async def _pos(request: Request) -> BlinkClient:
    return _runtime(request).pos


PosBlink = Annotated[BlinkClient, Depends(_pos)]
"""Blink with the POS account's key: prices, and a merchant's key checked through it."""


async def _accounts(request: Request) -> PosAccounts:
    return _runtime(request).accounts


Accounts = Annotated[PosAccounts, Depends(_accounts)]
"""The POS accounts: their invoice budgets and balances."""


async def _merchant_keys(request: Request) -> MerchantKeyPolicy:
    return _runtime(request).merchant_keys


KeyPolicy = Annotated[MerchantKeyPolicy, Depends(_merchant_keys)]
"""Which merchant keys are accepted (none that can spend, unless the operator allows it)."""


async def _watchers(request: Request) -> Watchers:
    return _runtime(request).watchers


Watching = Annotated[Watchers, Depends(_watchers)]
"""The background settlement a webhook starts."""


async def _webhook_secret(request: Request) -> str | None:
    return _runtime(request).webhook_secret


WebhookSecret = Annotated[str | None, Depends(_webhook_secret)]
"""The secret Blink signs webhooks with; None when webhooks are not configured."""


async def _sandbox(request: Request) -> Sandbox | None:
    return _runtime(request).sandbox


SandboxWorld = Annotated[Sandbox | None, Depends(_sandbox)]
"""The bundled simulator and its accounts; None when talking to real Blink."""


async def _blink_probe(request: Request) -> SingleFlight[dict[str, Any]]:
    return _runtime(request).blink_probe


BlinkProbe = Annotated[SingleFlight[dict[str, Any]], Depends(_blink_probe)]
"""Health's question to Blink, shared by concurrent callers and reused for a few seconds."""


async def _payment_views(request: Request) -> PublicStatus:
    rt = _runtime(request)
    return PublicStatus(rt.store.live, rt.store.feed, rt.settings.max_leg_attempts)


PaymentViews = Annotated[PublicStatus, Depends(_payment_views)]
"""The public view of payments and their change notices."""


async def _limits(request: Request) -> RequestLimits:
    rt = _runtime(request)
    return RequestLimits(rt.store, rt.invoices)


Limits = Annotated[RequestLimits, Depends(_limits)]
"""The per-IP and per-wallet request limits."""


async def _client_ip(request: Request) -> str:
    return client_ip(request)


ClientIp = Annotated[str, Depends(_client_ip)]
"""The caller's IP: the connection's peer, or what a TRUSTED_PROXIES proxy said in X-Forwarded-For."""


async def _operator(request: Request) -> OperatorGate:
    def build() -> OperatorGate:
        rt = _runtime(request)
        settings = rt.settings
        return OperatorGate(settings.operator_token, rt.sandbox is not None, settings.public_metrics, rt.store)

    return _once(request, "operator_gate", build)


Operator = Annotated[OperatorGate, Depends(_operator)]
"""Who may use the dashboard and read statistics, metrics and the docs."""


async def _web_keys(request: Request) -> WebKeys:
    def build() -> WebKeys:
        rt = _runtime(request)
        return build_keys(rt.settings, sandbox=rt.sandbox is not None)

    return _once(request, "web_keys", build)


PageKeys = Annotated[WebKeys, Depends(_web_keys)]
"""What the pages seal, sign and check cookies with (csrf.require_csrf uses it too)."""


async def _tills(request: Request, keys: PageKeys) -> Tills:
    def build() -> Tills:
        rt = _runtime(request)
        return Tills(rt.pg.tills, rt.pos, keys.keyring, rt.merchant_keys)

    return _once(request, "tills", build)


TillService = Annotated[Tills, Depends(_tills)]
"""The owner's tills and what a paired till may ask for."""
