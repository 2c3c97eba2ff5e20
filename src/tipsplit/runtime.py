"""Assemble a running tipsplit from settings: servers, store, Blink, settlement, watchers.

One place decides what runs where: embedded PostgreSQL/Redis when no URLs
are given, the bundled Blink simulator when no Blink URL is given (sandbox),
and the real thing otherwise.
"""

import base64
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import structlog

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.updates import MyUpdates
from tipsplit.config import Settings
from tipsplit.crypto import KeyRing
from tipsplit.embedded import embedded_stack_for, resolve_urls
from tipsplit.invoicing import InvoiceService, LookupCache
from tipsplit.observability import SETTLEMENTS, register_secrets, settings_secrets
from tipsplit.sandbox import Sandbox, start_sandbox
from tipsplit.settle import SettlePolicy, Settler
from tipsplit.store.hybrid import HybridTipStore
from tipsplit.watch import Watchers

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """Everything a request handler needs, built once at start-up and closed at shutdown."""

    settings: Settings
    store: HybridTipStore
    pos: BlinkClient
    settler: Settler
    invoices: InvoiceService
    watchers: Watchers
    webhook_secret: str | None
    sandbox: Sandbox | None
    stack: AsyncExitStack = field(repr=False)

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
        assert settings.database_url and settings.blink_api_url and settings.blinkpos_api_key
        assert settings.blinkpos_btc_wallet_id
        store = HybridTipStore(settings, keyring)
        await store.initialize()
        stack.push_async_callback(store.close)

        pos = BlinkClient(settings.blink_api_url, settings.blinkpos_api_key)
        stack.push_async_callback(pos.aclose)
        policy = SettlePolicy(
            claim_lease_seconds=settings.claim_lease_seconds,
            max_leg_attempts=settings.max_leg_attempts,
            retry_base_seconds=settings.leg_retry_base_seconds,
        )
        settler = Settler(
            store, pos, settings.blinkpos_btc_wallet_id, policy,
            on_outcome=lambda outcome: SETTLEMENTS.labels(outcome=outcome).inc(),
        )
        invoices = InvoiceService(
            store, pos, settings.blinkpos_btc_wallet_id, settings.invoice_expiry_minutes,
            LookupCache(settings.owner_check_ttl_seconds),
        )
        updates = MyUpdates(settings.blink_api_url, settings.blinkpos_api_key)
        watchers = Watchers(
            settler, store.cold, settings.blinkpos_btc_wallet_id,
            settings.poll_interval_seconds, settings.reconcile_interval_seconds, updates,
        )
        watchers.start()
        stack.push_async_callback(watchers.stop)
        return Runtime(settings, store, pos, settler, invoices, watchers, webhook_secret, sandbox, stack)
    except BaseException:
        await stack.aclose()
        raise
