"""What the operator commands print, and the exit code each outcome maps to.

Errors go to stderr with exit 2 when the input or configuration is wrong, so
a script can tell "fix your setup" (2) from "partly done or refused" (1).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console

from tipsplit.cli.open_store import OpenStore, OperateError, open_store
from tipsplit.runtime.embedded import EmbeddedServerError
from tipsplit.settings import Settings
from tipsplit.store.errors import StorageUnavailable

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_BAD_INPUT = 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandError(Exception):
    """Stop the command: print the message on stderr and exit with the code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


@asynccontextmanager
async def connected(settings: Settings, *, migrate: bool = True) -> AsyncIterator[OpenStore]:
    """The store, or a CommandError (exit 2) saying why it cannot be reached."""
    try:
        async with open_store(settings, migrate=migrate) as opened:
            yield opened
    except (OperateError, StorageUnavailable, EmbeddedServerError) as exc:
        raise CommandError(f"cannot open the store: {exc}") from None


def fail(exc: CommandError) -> int:
    err.print(f"error: {exc}", markup=False)
    return exc.code
