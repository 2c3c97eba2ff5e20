"""Blink's invoice-creation rate limits, counted on the simulator's clock.

Blink consumes one point per invoice creation from a rate-limiter-flexible RateLimiterRedis
(services/rate-limit, domain/rate-limit): `invoiceCreateAttempt` for invoices an account
creates on its own wallet (lnInvoiceCreate, lnUsdInvoiceCreate) and
`invoiceCreateForRecipientAttempt` for invoices created on an account's behalf, both keyed
on the account and both 60 points per 60 s with a 300 s block (galoy.yaml). The window is
fixed: it opens at the first point and lasts 60 s. The 61st point within it is refused and
blocks the account for 300 s from then; every attempt during the block is refused too. The
point is taken after the wallet and amount checks and before the invoice is made, so a
refused duplicate externalId still costs a point.
"""

from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tipsplit.sim.ledger import LedgerError

INVOICE_CREATE = "invoiceCreate"
INVOICE_CREATE_FOR_RECIPIENT = "invoiceCreateForRecipient"
LIMITERS = (INVOICE_CREATE, INVOICE_CREATE_FOR_RECIPIENT)


@dataclass(frozen=True)
class LimitRule:
    points: int = 60
    window_seconds: float = 60.0
    block_seconds: float = 300.0


class TooManyInvoices(LedgerError):
    """InvoiceCreate(ForRecipient)RateLimiterExceededError as error-map.ts answers it, in the payload."""

    code = "TOO_MANY_REQUEST"

    def __init__(self) -> None:
        super().__init__("Too many invoices creation, please wait for a while and try again.")


@dataclass
class _Window:
    used: int
    expires_at: float


class RateLimits:
    """The two limiters for every account; when disabled they count but never refuse."""

    def __init__(self, clock: Callable[[], float], enabled: bool = True, rule: LimitRule = LimitRule()) -> None:
        self._clock = clock
        self.enabled = enabled
        self.rule = rule
        self._windows: dict[tuple[str, str], _Window] = {}
        self._refused: Tally[tuple[str, str]] = Tally()

    def consume(self, limiter: str, account_id: str) -> None:
        """Take one point for `account_id`, or raise TooManyInvoices as Blink refuses the creation."""
        key = (limiter, account_id)
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now >= window.expires_at:
            window = self._windows[key] = _Window(used=0, expires_at=now + self.rule.window_seconds)
        window.used += 1
        if window.used <= self.rule.points or not self.enabled:
            return
        if window.used == self.rule.points + 1 and self.rule.block_seconds > 0:
            window.expires_at = now + self.rule.block_seconds
        self._refused[key] += 1
        raise TooManyInvoices()

    def configure(self, enabled: bool, rule: LimitRule) -> None:
        """Apply a new rule from now on; every window and count starts afresh."""
        self.enabled = enabled
        self.rule = rule
        self._windows.clear()
        self._refused.clear()

    def state(self, limiter: str, account_id: str) -> dict[str, Any]:
        """One limiter of one account as `GET /sim/limits` shows it; `refused` counts since the simulator started."""
        key = (limiter, account_id)
        now = self._clock()
        window = self._windows.get(key)
        live = window is not None and now < window.expires_at
        used = window.used if window is not None and live else 0
        blocked = live and window is not None and self.enabled and window.used > self.rule.points
        return {
            "used": used, "points": self.rule.points, "windowSeconds": self.rule.window_seconds,
            "blockedUntil": window.expires_at if blocked and window is not None else None,
            "refused": self._refused[key],
        }
