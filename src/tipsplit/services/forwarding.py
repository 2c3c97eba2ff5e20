"""Settlement asked for by anyone (`forward-with-tips` needs no credentials), without letting them spend Blink calls.

Settling a payment that is not yet known to be paid asks Blink about the
POS invoice with the POS key. So that callers cannot turn requests into
Blink calls, concurrent requests for one payment share one settlement, and
an answer that only says "ask again later" (not paid, expired, Blink
unavailable) is reused for a couple of seconds: in this process, and through
Redis by every instance, so an answer may be a few seconds old. The payment
itself is settled by the server's own detection (webhook, subscription,
poller), which never goes through here.
"""

from tipsplit.services.settlement import Outcome, Settler, SettleResult
from tipsplit.services.single_flight import SingleFlight
from tipsplit.store.hot import HotStore, if_up

REUSABLE = frozenset({Outcome.NOT_PAID, Outcome.EXPIRED, Outcome.BLINK_UNAVAILABLE})


def _reusable(result: SettleResult) -> bool:
    return result.outcome in REUSABLE


class ForwardRequests:
    """`settle` for untrusted callers: one Blink check per payment at a time, "not yet" answers reused briefly."""

    def __init__(self, settler: Settler, hot: HotStore | None, reuse_seconds: float) -> None:
        self._settler = settler
        self._hot = hot
        self._reuse_seconds = reuse_seconds
        self._flights: SingleFlight[SettleResult] = SingleFlight(reuse_seconds, keep=_reusable)

    async def settle(self, payment_hash: str) -> SettleResult:
        return await self._flights.run(payment_hash, lambda: self._settle(payment_hash))

    async def _settle(self, payment_hash: str) -> SettleResult:
        shared = await if_up(self._hot, lambda hot: hot.recent_answer(payment_hash))
        outcome, _, status = (shared or "").partition(":")
        if outcome in REUSABLE:
            return SettleResult(Outcome(outcome), status)
        result = await self._settler.settle(payment_hash)
        if _reusable(result) and self._reuse_seconds > 0:
            answer = f"{result.outcome.value}:{result.status}"
            ttl_ms = max(1, int(self._reuse_seconds * 1000))
            await if_up(self._hot, lambda hot: hot.remember_answer(payment_hash, answer, ttl_ms))
        return result
