"""Open the store the way `serve` would, for one-shot operator commands.

An operator command must see the same data as the running service: the same
DATABASE_URL/REDIS_URL, or, when they are unset, the embedded servers of the
same data directory (reused if the service already runs them), and the same
encryption keys (in sandbox mode, the key file the service generated).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tipsplit.keyring import KeyRing
from tipsplit.runtime.assembly import sandbox_settings
from tipsplit.runtime.embedded import embedded_stack_for, resolve_urls
from tipsplit.settings import Settings
from tipsplit.store.hot import HotStore
from tipsplit.store.hybrid import HybridTipStore
from tipsplit.store.postgres import PostgresStore


class OperateError(RuntimeError):
    """The store cannot be opened as configured; the message says which setting to fix."""


@dataclass(frozen=True)
class OpenStore:
    """A connected store, the key ring its API keys are sealed with, and the resolved settings.

    `pg` and `hot` are the PostgreSQL and Redis parts under `store`, for the commands that read or change
    payments directly; `store` itself opens them (migrations, the journal) and serves the legacy import.
    """

    store: HybridTipStore
    keyring: KeyRing
    settings: Settings

    @property
    def pg(self) -> PostgresStore:
        return self.store.pg

    @property
    def hot(self) -> HotStore | None:
        """Redis, when it is configured: the commands that settle lock and cache through it."""
        return self.store.hot


def keyring_for(settings: Settings) -> tuple[Settings, KeyRing]:
    """The key ring in force; an empty ENCRYPTION_KEYS outside sandbox mode is a configuration error."""
    settings = sandbox_settings(settings)
    if not settings.encryption_keys:
        raise OperateError("ENCRYPTION_KEYS is not set")
    return settings, KeyRing.from_settings(settings)


@asynccontextmanager
async def open_store(settings: Settings, *, migrate: bool = True) -> AsyncIterator[OpenStore]:
    """Connect to PostgreSQL (and Redis), starting embedded servers where no URL is given."""
    settings, keyring = keyring_for(settings)
    stack = embedded_stack_for(settings)
    if stack is not None:
        await asyncio.to_thread(stack.start)
    try:
        settings = resolve_urls(settings, stack)
        store = HybridTipStore(settings, keyring)
        await store.initialize(migrate=migrate)
        try:
            yield OpenStore(store, keyring, settings)
        finally:
            await store.close()
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
