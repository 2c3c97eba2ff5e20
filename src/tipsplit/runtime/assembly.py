"""Assemble a running tipsplit from settings: servers, store, Blink, settlement, watchers.

One place decides what runs where: embedded PostgreSQL/Redis when no URLs
are given, the bundled Blink simulator when no Blink URL is given (sandbox),
and the real thing otherwise.
"""

import base64
import gc
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import structlog

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.updates import MyUpdates
from tipsplit.keyring import KeyRing
from tipsplit.observability import SETTLEMENTS, register_secrets, settings_secrets
from tipsplit.runtime.embedded import embedded_stack_for, resolve_urls
from tipsplit.runtime.sandbox import Sandbox, start_sandbox
from tipsplit.services.detection import Watchers
from tipsplit.services.forwarding import ForwardRequests
from tipsplit.services.invoicing import InvoiceService, LookupCache
from tipsplit.services.merchant_keys import MerchantKeyPolicy, check_pos_key
from tipsplit.services.pos_accounts import PosAccounts, open_pos_accounts
from tipsplit.services.settlement import SettlePolicy, Settler
from tipsplit.services.single_flight import SingleFlight
from tipsplit.settings import Settings
from tipsplit.store.stack import StoreStack
from tipsplit.store.hot import HotStore
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

# Allocations between young-generation collections once running (CPython's default is 700): a payment
# allocates thousands of short-lived objects, and at 700 the collector ran several times per payment.
GC_YOUNG_THRESHOLD = 20_000

# `/api/health` asks Blink at most this often per instance, however often it is called.
HEALTH_PROBE_REUSE_SECONDS = 5.0


@dataclass
class Runtime:
    """Everything a request handler needs, built once at start-up and closed at shutdown."""

    settings: Settings
    store: StoreStack
    pg: PostgresStore
    pos: BlinkClient
    accounts: PosAccounts
    settler: Settler
    forwards: ForwardRequests
    invoices: InvoiceService
    merchant_keys: MerchantKeyPolicy
    watchers: Watchers
    webhook_secret: str | None
    sandbox: Sandbox | None
    stack: AsyncExitStack = field(repr=False)
    blink_probe: SingleFlight[dict[str, Any]] = field(
        default_factory=lambda: SingleFlight(HEALTH_PROBE_REUSE_SECONDS), repr=False
    )

    async def close(self) -> None:
        await self.stack.aclose()


def sandbox_settings(settings: Settings) -> Settings:
    """In sandbox mode a missing encryption key is generated once and kept in the data directory."""
    if settings.encryption_keys or not settings.sandbox:
        return settings
    path = settings.data_dir / "encryption.keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(KeyRing.generate_key())
        path.chmod(0o600)
    return settings.model_copy(update={"encryption_keys": path.read_text().strip()})


def assemble_settler(
    pg: PostgresStore,
    hot: HotStore | None,
    accounts: PosAccounts,
    settings: Settings,
    metrics: MetricsCollector | None = None,
) -> Settler:
    """The one way a Settler is built, for the service and for operator commands alike.

    Here the real POS accounts (and their `BlinkClient`s) meet the narrow
    ports settlement is written against, so mypy checks that they fit. Legs
    are retried by the store's retry policy, the one failed payments are
    scheduled by.
    """
    return Settler(
        pg, hot, accounts, SettlePolicy(settings.claim_lease_seconds, pg.retry),
        on_outcome=lambda outcome: SETTLEMENTS.labels(outcome=outcome).inc(), metrics=metrics,
    )


def settle_gc() -> None:
    """After start-up: keep what start-up built (modules, settings, pools) out of every later collection.

    Garbage is collected first, so only live objects are frozen; the young generation then waits for more
    allocations before a collection, since the service's objects are mostly freed by reference counting.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, young), middle, old)


async def start_runtime(settings: Settings, *, public_url: str | None = None) -> Runtime:
    """Start every part in dependency order; on any failure, stop what was started."""
    settings.require_production_secrets()
    stack = AsyncExitStack()
    try:
        settings = sandbox_settings(settings)
        embedded = embedded_stack_for(settings)
        if embedded is not None:
            embedded.start()
            stack.callback(embedded.stop)
            settings = resolve_urls(settings, embedded)
        keyring = KeyRing.from_settings(settings)

        sandbox: Sandbox | None = None
        webhook_secret = settings.blink_webhook_secret
        if settings.sandbox:
            webhook_secret = webhook_secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            sandbox = await start_sandbox(settings, webhook_secret, public_url)
            stack.push_async_callback(sandbox.stop)
            settings = settings.model_copy(
                update={
                    "blink_api_url": sandbox.graphql_url,
                    "blinkpos_api_key": sandbox.pos.api_key,
                    "blinkpos_btc_wallet_id": sandbox.pos.wallet_id,
                }
            )
            log.warning("sandbox.mode", sim_url=sandbox.url, note="payments are simulated; no real sats move")

        register_secrets([*settings_secrets(settings), webhook_secret, (webhook_secret or "").removeprefix("whsec_")])
        assert settings.database_url and settings.blink_api_url
        pg = PostgresStore.from_settings(settings)
        store = StoreStack(settings, keyring, pg=pg)
        await store.initialize()
        stack.push_async_callback(store.close)

        accounts, pos = open_pos_accounts(settings, store.hot)
        stack.push_async_callback(pos.aclose)
        for account in accounts.all:
            await check_pos_key(account.client)
        merchant_keys = MerchantKeyPolicy(allow_write=settings.allow_write_merchant_keys)
        if merchant_keys.allow_write:
            log.warning("merchant_keys.write_allowed", setting="ALLOW_WRITE_MERCHANT_KEYS",
                        note="merchant keys that can spend are accepted; a stolen key could spend merchants' funds")
        settler = assemble_settler(pg, store.hot, accounts, settings, store.metrics)
        invoices = InvoiceService(
            store.intake, pos, accounts, settings.invoice_expiry_minutes, LookupCache(settings.owner_check_ttl_seconds),
            merchant_keys,
        )
        updates = [MyUpdates(settings.blink_api_url, api_key) for api_key, _ in settings.pos_accounts]
        watchers = Watchers(
            settler, pg.claims, accounts, settings.poll_interval_seconds, settings.reconcile_interval_seconds, updates,
            concurrency=settings.settlements_at_once,
        )
        watchers.start()
        stack.push_async_callback(watchers.stop)
        forwards = ForwardRequests(settler, store.hot, settings.forward_answer_reuse_seconds)
        settle_gc()
        return Runtime(
            settings, store, pg, pos, accounts, settler, forwards, invoices, merchant_keys, watchers, webhook_secret,
            sandbox, stack,
        )
    except BaseException:
        await stack.aclose()
        raise
