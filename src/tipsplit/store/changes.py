"""Change notices: after a committed state change of a payment, tell whoever listens (the live views in Redis).

The PostgreSQL entity modules mark each transition with one of these decorators,
so a notice is sent exactly where a state change commits and nowhere else,
and only after the transaction has committed: when the decorated method has
returned, or, when it ran on a caller's transaction (its `conn` argument),
once that transaction commits (store/database.py). A listener never fails the
transition: PostgreSQL already holds it.
"""

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

ChangeListener = Callable[[Sequence[str]], Awaitable[None]]


class Announcing(Protocol):
    """A repository that announces changed payments (now, or when the caller's transaction `conn` commits)."""

    async def announce(self, payment_hashes: Sequence[str], conn: Any = None) -> None: ...


S = TypeVar("S", bound=Announcing)


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
                await self.announce([payment_hash], kwargs.get("conn"))
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
        await self.announce(changed, kwargs.get("conn"))
        return changed

    return announced
