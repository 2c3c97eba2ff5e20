"""Change notices: after a committed state change of a payment, tell whoever listens (the live views in Redis).

The PostgreSQL repository marks each transition with one of these decorators,
so a notice is sent exactly where a state change commits and nowhere else,
and only after the transaction has committed (the decorated method has
returned). A listener never fails the transition: PostgreSQL already holds it.
"""

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ChangeListener = Callable[[Sequence[str]], Awaitable[None]]


class Announcing(Protocol):
    """A repository whose transitions are announced to `change_listener` (None: nobody listens)."""

    change_listener: ChangeListener | None


S = TypeVar("S", bound=Announcing)


async def announce(store: Announcing, payment_hashes: Sequence[str]) -> None:
    """Tell the store's listener that these payments changed; for changes made outside a decorated method."""
    if store.change_listener is None or not payment_hashes:
        return
    try:
        await store.change_listener(payment_hashes)
    except Exception:
        log.exception("store.change_notice_failed", payments=len(payment_hashes))


def changes_payment(
    *, always: bool = False
) -> Callable[[Callable[Concatenate[S, str, P], Awaitable[R]]], Callable[Concatenate[S, str, P], Awaitable[R]]]:
    """For a method whose first argument is the payment hash: announce it when the method changed something.

    A method says it changed nothing by returning something falsy (False, None, an empty list: a lost
    claim, a leg found elsewhere); with `always`, every return is a change (e.g. an appended event).
    """

    def decorate(method: Callable[Concatenate[S, str, P], Awaitable[R]]) -> Callable[Concatenate[S, str, P], Awaitable[R]]:
        @functools.wraps(method)
        async def announced(self: S, payment_hash: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
            result = await method(self, payment_hash, *args, **kwargs)
            if always or result:
                await announce(self, [payment_hash])
            return result

        return announced

    return decorate


def changes_payments(
    method: Callable[Concatenate[S, P], Awaitable[list[str]]],
) -> Callable[Concatenate[S, P], Awaitable[list[str]]]:
    """For a method that returns the hashes of the payments it changed: announce those."""

    @functools.wraps(method)
    async def announced(self: S, /, *args: P.args, **kwargs: P.kwargs) -> list[str]:
        changed = await method(self, *args, **kwargs)
        await announce(self, changed)
        return changed

    return announced
