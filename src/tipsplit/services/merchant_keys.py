"""What tipsplit asks of Blink API keys: the POS key must settle, a merchant's key must not be able to spend.

tipsplit keeps every merchant's key (encrypted) but needs it only to prove,
with `me`, that the merchant owns the wallet the base goes to: READ is
enough. A key with WRITE stolen from tipsplit could spend the merchant's
funds, so such keys are refused unless the operator allows them
(ALLOW_WRITE_MERCHANT_KEYS), and then accepted with a warning. The POS key
is the opposite: settlement checks invoices (READ), creates them (RECEIVE)
and pays the legs (WRITE), so the service will not start without all three.
"""

import logging
from dataclasses import dataclass

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkAuthError, BlinkError

log = logging.getLogger(__name__)

WRITE = "WRITE"
SETTLEMENT_SCOPES = frozenset({"READ", "RECEIVE", "WRITE"})
READ_ONLY_ADVICE = "create a READ-only API key in the Blink dashboard and use that one"


class MerchantKeyRefused(ValueError):
    """A merchant's key may spend the merchant's funds and such keys are not allowed here."""


class PosKeyError(RuntimeError):
    """BLINKPOS_API_KEY cannot do what settlement needs; the message names what is missing."""


@dataclass(frozen=True)
class MerchantKeyPolicy:
    """Whether merchant keys with the WRITE scope are accepted (ALLOW_WRITE_MERCHANT_KEYS)."""

    allow_write: bool = False

    def check(self, scopes: frozenset[str], account: str | None) -> None:
        """Refuse a key that can spend, or, where the operator allows it, say so in the log (never the key)."""
        if WRITE not in scopes:
            return
        if not self.allow_write:
            raise MerchantKeyRefused(
                f"this API key has the WRITE scope, so anyone holding it can spend the account's funds: "
                f"{READ_ONLY_ADVICE}"
            )
        log.warning("accepted a merchant API key with the WRITE scope (account %s): ALLOW_WRITE_MERCHANT_KEYS is on",
                    account or "without a username")


async def require_settling_key(pos: BlinkClient) -> None:
    """PosKeyError when Blink refuses the POS key or it lacks a scope settlement needs; BlinkError if Blink is away."""
    try:
        scopes = await pos.scopes()
    except BlinkAuthError as exc:
        raise PosKeyError(
            f"Blink refused BLINKPOS_API_KEY ({exc.detail}); it must be a valid key with the scopes "
            f"{', '.join(sorted(SETTLEMENT_SCOPES))}"
        ) from None
    missing = sorted(SETTLEMENT_SCOPES - scopes)
    if missing:
        raise PosKeyError(
            f"BLINKPOS_API_KEY lacks the Blink scope(s) {', '.join(missing)} that settlement needs (READ to check "
            "invoices, RECEIVE to create them, WRITE to pay the base and tips): create a key with all three"
        )


async def check_pos_key(pos: BlinkClient) -> None:
    """At start-up: a POS key that cannot settle stops the service; Blink being unreachable only warns."""
    try:
        await require_settling_key(pos)
    except BlinkError as exc:
        log.warning("could not ask Blink for BLINKPOS_API_KEY's scopes; starting unchecked: %s", exc)
