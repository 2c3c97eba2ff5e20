"""The settlement state machine: forward a paid POS invoice's base and tips exactly once.

Safety comes from PostgreSQL, not from timing: a payment is worked on only
by the holder of a leased claim (a conditional UPDATE), every leg records its
destination invoice before it is paid, and an unknown outcome is resolved by
asking Blink about that same invoice. Re-running `settle` at any point, on
any instance, after any crash, can only finish the job or find it finished.

Legs are independent rows with independent invoices, so a payment's open
legs are driven concurrently; each leg's own steps (and events) stay in
order, and whether the payment is complete, failed or still open is decided
once every leg has taken its step (`_conclude`). Blink is reached only
through the narrow port of `blink_port.py`.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog

from tipsplit.blink.errors import (
    BlinkDuplicateExternalId,
    BlinkError,
    BlinkNotFound,
    BlinkOutcomeUnknown,
    BlinkUnavailable,
)
from tipsplit.blink.types import InvoiceStatus, PaymentSendStatus
from tipsplit.domain.external_ids import leg_external_id
from tipsplit.domain.records import Archived, LegRecord, PaymentRecord
from tipsplit.domain.retry import RetryPolicy
from tipsplit.domain.states import BASE_LEG, FINAL_LEG_STATUSES, LegStatus, PaymentStatus, WalletCurrency
from tipsplit.observability import LEGS_RETRIED
from tipsplit.services.blink_port import SettlingAccount, SettlingAccounts
from tipsplit.services.pos_accounts import NoInvoiceBudget
from tipsplit.store.hot import HotStore, if_up
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.postgres import PostgresStore

log = structlog.get_logger(__name__)

LEG_INVOICE_EXPIRY_MINUTES = 24 * 60
# Blink keeps a USD wallet's invoice at most 5 minutes (its price is fixed at creation); settlement pays a leg
# right after invoicing it, and an invoice that expires unpaid is replaced like any other.
USD_LEG_INVOICE_EXPIRY_MINUTES = 5
UNRESOLVED_RECHECK_SECONDS = 5.0
# A claim younger than this share of its lease is not renewed before the legs' round: it has nearly all of it left.
FRESH_CLAIM_SHARE = 0.1
WAITING_FOR_BUDGET = "destination invoice budget"


class Outcome(StrEnum):
    """What one call of `settle` achieved; the HTTP layer maps these to status codes."""

    COMPLETED = "completed"
    ALREADY_COMPLETED = "already_completed"
    IN_PROGRESS = "in_progress"
    NOT_PAID = "not_paid"
    EXPIRED = "expired"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    BLINK_UNAVAILABLE = "blink_unavailable"


@dataclass(frozen=True)
class SettleResult:
    outcome: Outcome
    status: str
    lock_released: bool = False


@dataclass(frozen=True)
class SettlePolicy:
    """Timing of claims and retries; in the service, the store's own retry policy (one schedule for all)."""

    claim_lease_seconds: int = 60
    retry: RetryPolicy = RetryPolicy()


class Settler:
    """Runs settlements of the payments received by this instance's POS accounts; one per service process.

    Each payment's legs are paid from the POS account that received it.
    PostgreSQL (`pg`) is the record and the only guard; Redis (`hot`, None
    when it is off) holds the processing lock that spares a second instance
    the work, and the cache entry and stats that archiving makes stale.
    `metrics` collects how long a completed settlement took.
    """

    def __init__(
        self,
        pg: PostgresStore,
        hot: HotStore | None,
        accounts: SettlingAccounts,
        policy: SettlePolicy = SettlePolicy(),
        on_outcome: Callable[[str], None] | None = None,
        metrics: MetricsCollector | None = None,
    ) -> None:
        self._pg = pg
        self._hot = hot
        self._metrics = metrics
        self._accounts = accounts
        self._policy = policy
        self._owner = f"settler-{uuid.uuid4().hex[:12]}"
        self._on_outcome = on_outcome or (lambda _outcome: None)

    @property
    def owner(self) -> str:
        return self._owner

    async def settle(
        self, payment_hash: str, *, allow_failed: bool = False, blink_said_paid: bool = False
    ) -> SettleResult:
        """Bring one payment as far as it can go now. Safe to call any number of times, anywhere.

        `blink_said_paid`: Blink itself has just reported the POS invoice PAID (its `myUpdates` push over the
        POS account's own authenticated connection), so it is not asked again before the claim.
        """
        started = time.perf_counter()
        token = await if_up(self._hot, lambda hot: hot.acquire_lock(payment_hash))
        result: SettleResult | None = None
        try:
            result = await self._settle_claimed(
                payment_hash, allow_failed=allow_failed, lock_token=token, blink_said_paid=blink_said_paid
            )
        finally:
            if token is not None and not (result is not None and result.lock_released):
                await if_up(self._hot, lambda hot: hot.release_lock(payment_hash, token))
        if result.outcome is Outcome.COMPLETED and self._metrics is not None:
            self._metrics.record_processing_time(payment_hash, (time.perf_counter() - started) * 1000)
        self._on_outcome(result.outcome.value)
        return result

    async def _settle_claimed(
        self, payment_hash: str, *, allow_failed: bool, lock_token: str | None, blink_said_paid: bool
    ) -> SettleResult:
        seen = await self._pg.payments.get(payment_hash, with_legs=False)
        if seen is None:
            return SettleResult(Outcome.NOT_FOUND, "not_found")
        if self._accounts.for_payment(seen.pos_wallet_id) is None:
            log.warning("settlement.other_pos_account", payment_hash=payment_hash)
            return SettleResult(Outcome.IN_PROGRESS, str(seen.status))
        blink_says: InvoiceStatus | None = None
        if seen.paid_at is None and seen.status in (PaymentStatus.PENDING, PaymentStatus.EXPIRED):
            # Asked before claiming, so that polling an unpaid invoice writes nothing (unless Blink just said so).
            try:
                blink_says = InvoiceStatus.PAID if blink_said_paid else await self._pos_invoice_status(seen)
            except BlinkError as exc:
                log.warning("settlement.status_unknown", payment_hash=payment_hash, error=str(exc))
                return SettleResult(Outcome.BLINK_UNAVAILABLE, str(seen.status))
            if blink_says is InvoiceStatus.PENDING:
                return SettleResult(Outcome.NOT_PAID, str(seen.status))
            if blink_says is InvoiceStatus.EXPIRED and seen.status == PaymentStatus.EXPIRED:
                return SettleResult(Outcome.EXPIRED, str(seen.status))
        claimed_at = time.monotonic()
        payment = await self._pg.claims.claim(
            payment_hash, self._owner, self._policy.claim_lease_seconds, allow_failed=allow_failed,
            paid=blink_says is InvoiceStatus.PAID,
        )
        if payment is None:
            return await self._not_claimed(payment_hash)
        log.info("settlement.claimed", payment_hash=payment_hash, previous=seen.status)
        if payment.paid_at is None:
            paid = await self._confirm_paid(payment)
            if paid is not None:
                return paid
        return await self._forward(payment, lock_token, claimed_at)

    # -- confirming the sale ---------------------------------------------------

    async def _not_claimed(self, payment_hash: str) -> SettleResult:
        payment = await self._pg.payments.get(payment_hash, with_legs=False)
        if payment is None:
            return SettleResult(Outcome.NOT_FOUND, "not_found")
        outcome = {
            PaymentStatus.COMPLETED: Outcome.ALREADY_COMPLETED,
            PaymentStatus.FAILED: Outcome.FAILED,
            PaymentStatus.EXPIRED: Outcome.EXPIRED,
        }.get(PaymentStatus(payment.status), Outcome.IN_PROGRESS)
        return SettleResult(outcome, payment.status)

    async def _pos_invoice_status(self, payment: PaymentRecord) -> InvoiceStatus:
        """Blink's word on the POS invoice; one Blink no longer knows counts as expired once its time is up."""
        try:
            return await self._pos_of(payment).client.invoice_status_by_hash(payment.payment_hash)
        except BlinkNotFound:
            return InvoiceStatus.EXPIRED if payment.expires_at <= datetime.now(UTC) else InvoiceStatus.PENDING

    async def _confirm_paid(self, payment: PaymentRecord) -> SettleResult | None:
        """Invariant 3: nothing is forwarded before Blink says the POS invoice is PAID.

        Called for a claimed payment not yet known paid; when Blink said PAID
        just before the claim, the claim itself recorded it.
        """
        ph = payment.payment_hash
        try:
            status = await self._pos_invoice_status(payment)
        except BlinkError as exc:
            log.warning("settlement.status_unknown", payment_hash=ph, error=str(exc))
            await self._release(payment, PaymentStatus.PENDING, "status_check_failed", {"error": str(exc)})
            return SettleResult(Outcome.BLINK_UNAVAILABLE, PaymentStatus.PENDING.value)
        if status is InvoiceStatus.PAID:
            await self._pg.claims.mark_paid(ph, self._owner)
            return None
        if status is InvoiceStatus.EXPIRED:
            await self._pg.claims.expire(ph, self._owner)
            await if_up(self._hot, lambda hot: hot.delete_tip(ph))
            return SettleResult(Outcome.EXPIRED, PaymentStatus.EXPIRED.value)
        await self._release(payment, PaymentStatus.PENDING, "not_paid_yet", {})
        return SettleResult(Outcome.NOT_PAID, PaymentStatus.PENDING.value)

    async def _release(self, payment: PaymentRecord, to: PaymentStatus, event: str, data: dict[str, Any]) -> None:
        await self._pg.claims.release(payment.payment_hash, self._owner, to, event, data)

    def _pos_of(self, payment: PaymentRecord) -> SettlingAccount:
        pos = self._accounts.for_payment(payment.pos_wallet_id)
        if pos is None:
            raise LookupError(f"payment {payment.payment_hash} belongs to a POS account this instance does not have")
        return pos

    # -- all open legs at once -------------------------------------------------

    async def _forward(self, payment: PaymentRecord, lock_token: str | None, claimed_at: float) -> SettleResult:
        """Drive every open leg one step, all at once, then decide the payment's fate in one place.

        The lease is renewed once for the whole round, unless the claim was
        taken a moment ago (`FRESH_CLAIM_SHARE`). Every leg's step runs to its
        end even if another's raises (a send is never abandoned half way
        because a sibling failed); the first error is raised afterwards.
        """
        ph = payment.payment_hash
        pos = self._pos_of(payment)
        open_legs = [leg for leg in payment.legs if leg.status not in FINAL_LEG_STATUSES]
        settled = True
        if open_legs:
            lease = self._policy.claim_lease_seconds
            fresh = time.monotonic() - claimed_at < lease * FRESH_CLAIM_SHARE
            if not fresh and not await self._pg.claims.renew(ph, self._owner, lease):
                log.warning("settlement.claim_lost", payment_hash=ph)
                return SettleResult(Outcome.IN_PROGRESS, PaymentStatus.PROCESSING.value)
            steps = await asyncio.gather(*(self._drive_leg(ph, leg, pos) for leg in open_legs), return_exceptions=True)
            errors = [step for step in steps if isinstance(step, BaseException)]
            for error in errors[1:]:
                log.error("settlement.leg_crashed", payment_hash=ph, error=repr(error))
            if errors:
                raise errors[0]
            settled = all(step is True for step in steps)
        return await self._conclude(ph, lock_token, all_settled=settled)

    # -- one leg ---------------------------------------------------------------

    async def _drive_leg(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> bool:
        """Move one leg forward: invoice it once, pay that invoice, learn unknown outcomes from Blink.

        Only a send that Blink could act on counts as an attempt: checking on
        a send in flight, or failing to reach Blink, never does. A leg's steps
        run in order within this call, so its events do too. True when this
        step recorded the leg as succeeded.
        """
        try:
            ready = await self._take_up(ph, leg, pos)
        except BlinkError as exc:
            log.warning("settlement.leg_unresolved", payment_hash=ph, leg=leg.leg, error=str(exc))
            return False
        if ready is None:
            return False
        if ready.status is LegStatus.SUCCEEDED:
            return True
        return await self._advance(ph, ready, pos)

    async def _take_up(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> LegRecord | None:
        """The leg as it stands now, or None when there is nothing to do for it yet.

        A send whose outcome is unknown is learned from Blink first; a failed
        leg is taken up again only when its retry is due and attempts are left.
        """
        if leg.status == LegStatus.PAYING:
            return await self._resolve_unknown(ph, leg, pos)
        if leg.status == LegStatus.FAILED:
            if self._policy.retry.exhausted(leg.attempts) or not _due(leg):
                return None
            LEGS_RETRIED.inc()
            if leg.dest_payment_hash is not None:
                return await self._resolve_unknown(ph, leg, pos)
            await self._pg.legs.transition(ph, leg.leg, {LegStatus.FAILED}, LegStatus.PENDING)
            return replace(leg, status=LegStatus.PENDING)
        if leg.status == LegStatus.PENDING and not _due(leg):
            return None
        return leg

    async def _advance(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> bool:
        """Invoice a pending leg and send, pay an invoiced one, and record what stops it: a budget, Blink, a refusal.

        True when the leg is now recorded as succeeded.
        """
        try:
            if leg.status == LegStatus.PENDING:
                leg, ours = await self._invoice_leg(ph, leg, pos)
                if ours:
                    return await self._send(ph, leg, pos)
            if leg.status == LegStatus.INVOICED:
                return await self._pay_leg(ph, leg, pos)
        except NoInvoiceBudget as exc:
            log.info("settlement.leg_waiting", payment_hash=ph, leg=leg.leg, seconds=exc.retry_after)
            until = datetime.now(UTC) + timedelta(seconds=exc.retry_after)
            await self._pg.legs.wait(ph, leg.leg, until, WAITING_FOR_BUDGET)
        except BlinkUnavailable as exc:
            log.warning("settlement.leg_deferred", payment_hash=ph, leg=leg.leg, error=str(exc))
        except BlinkError as exc:
            await self._leg_failed(ph, leg, {leg.status, LegStatus.PENDING}, str(exc), counted=True)
        return False

    async def _invoice_leg(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> tuple[LegRecord, bool]:
        """Create the destination invoice, and store its hash with the send it is for before anything is paid.

        True with the leg, now `paying`, when the caller must send; False with
        the leg as it stands when it already had an invoice. The invoice
        carries the leg's deterministic externalId. If Blink already has one
        with it, an earlier attempt made that invoice and never stored it, so
        nothing can ever pay it: the leg moves to its next generation.
        """
        wallet_id, currency = leg.destination_wallet_id, leg.destination_currency
        if wallet_id is None:
            if leg.destination_username is None:
                raise ValueError(f"leg {leg.leg} of {ph} has neither wallet nor username")
            wallet = await pos.client.account_default_wallet(leg.destination_username)
            wallet_id, currency = wallet.id, WalletCurrency(wallet.currency)
            await self._pg.legs.set_wallet(ph, leg.leg, wallet_id, currency)
        expiry = USD_LEG_INVOICE_EXPIRY_MINUTES if currency is WalletCurrency.USD else LEG_INVOICE_EXPIRY_MINUTES
        for generation in (leg.invoice_generation, leg.invoice_generation + 1):
            external_id = leg_external_id(ph, leg.leg, generation)
            try:
                invoice = await self._accounts.create_leg_invoice(
                    pos, wallet_id, currency, leg.amount, leg.memo, expiry, external_id
                )
            except BlinkDuplicateExternalId:
                log.warning("settlement.leg_invoice_unrecorded", payment_hash=ph, leg=leg.leg, external_id=external_id)
                if not await self._pg.legs.skip_invoice_generation(ph, leg.leg, generation, external_id):
                    break
                continue
            stored = await self._pg.legs.set_invoice(
                ph, leg.leg, invoice.payment_hash, invoice.payment_request, sending={"amount": leg.amount}
            )
            ours = stored.status is LegStatus.PAYING and stored.dest_payment_hash == invoice.payment_hash.lower()
            return stored, ours
        raise BlinkUnavailable("leg invoice", "the leg's invoice is being replaced elsewhere")

    async def _pay_leg(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> bool:
        """Pay an invoiced leg's invoice: count the send as the leg becomes `paying`, then send."""
        moved = await self._pg.legs.transition(
            ph, leg.leg, {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True,
            event_type="leg_payment_sent", event_data={"leg": leg.leg, "amount": leg.amount},
        )
        if not moved:
            return False
        return await self._send(ph, replace(leg, status=LegStatus.PAYING, attempts=leg.attempts + 1), pos)

    async def _send(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> bool:
        """Send for a leg this settler has just made `paying` (its attempt counted); True if it is now succeeded."""
        try:
            result = await pos.client.pay_invoice(pos.wallet_id, leg.dest_payment_request or "", leg.memo)
        except BlinkOutcomeUnknown as exc:
            log.warning("settlement.outcome_unknown", payment_hash=ph, leg=leg.leg, error=str(exc))
            await self._pg.events.add(ph, "leg_outcome_unknown", {"leg": leg.leg, "error": str(exc)})
            try:
                resolved = await self._resolve_unknown(ph, replace(leg, last_error=str(exc)), pos)
            except BlinkError as unresolved:
                log.warning("settlement.leg_unresolved", payment_hash=ph, leg=leg.leg, error=str(unresolved))
                return False
            return resolved.status is LegStatus.SUCCEEDED
        except BlinkUnavailable:
            # Blink never saw the send: it was no attempt, so the count taken on the way to `paying` is given back.
            await self._pg.legs.transition(ph, leg.leg, {LegStatus.PAYING}, LegStatus.INVOICED, take_back_attempt=True)
            raise
        except BlinkError as exc:
            # Refused before paying (a key without WRITE, a malformed request): nothing moved.
            reason = str(exc)
        else:
            if result.settled:
                return await self._leg_succeeded(ph, leg, result.status.value)
            if result.status is not PaymentSendStatus.FAILURE:
                log.info("settlement.leg_pending", payment_hash=ph, leg=leg.leg)
                await self._pg.events.add(ph, "leg_payment_pending", {"leg": leg.leg})
                return False
            reason = "; ".join(str(e) for e in result.errors) or "payment failed"
        # The send was an attempt (counted when the leg became `paying`) and it failed.
        await self._leg_failed(ph, leg, {LegStatus.PAYING}, reason, counted=False)
        return False

    async def _resolve_unknown(self, ph: str, leg: LegRecord, pos: SettlingAccount) -> LegRecord:
        """Learn from Blink what became of this leg's invoice; return the leg as it now stands.

        The POS wallet's own sends for the invoice decide, never the invoice's
        status alone: a pending send means wait however long (the leg stays
        `paying`, no attempt is counted, the payment cannot fail meanwhile); a
        successful one, or a PAID invoice, means the leg is done. Only with no
        send, or failed ones only, may the same invoice be paid again, or, once
        it has expired unpaid, be replaced by a new one.
        """
        current = LegStatus(leg.status)
        if leg.dest_payment_hash is None:
            return leg
        try:
            status = await pos.client.invoice_status_by_hash(leg.dest_payment_hash)
        except BlinkNotFound:
            status = InvoiceStatus.PENDING
        sends = await pos.client.wallet_sends(pos.wallet_id, leg.dest_payment_hash)
        if status is InvoiceStatus.PAID or sends.succeeded:
            if await self._leg_succeeded(ph, leg, "PAID"):
                return replace(leg, status=LegStatus.SUCCEEDED)
            return leg
        if sends.in_flight:
            log.info("settlement.leg_send_in_flight", payment_hash=ph, leg=leg.leg)
            if current != LegStatus.PAYING:
                await self._pg.legs.transition(
                    ph, leg.leg, {current}, LegStatus.PAYING, event_type="leg_send_in_flight"
                )
            return replace(leg, status=LegStatus.PAYING)
        if status is InvoiceStatus.EXPIRED:
            await self._pg.legs.reset_invoice(ph, leg.leg, {current})
            return replace(leg, status=LegStatus.FAILED, dest_payment_hash=None, dest_payment_request=None)
        if self._policy.retry.exhausted(leg.attempts):
            reason = f"still unpaid after {leg.attempts} attempts"
            await self._leg_failed(ph, leg, {current}, leg.last_error or reason, counted=False)
            return replace(leg, status=LegStatus.FAILED)
        await self._pg.legs.transition(ph, leg.leg, {current}, LegStatus.INVOICED)
        return replace(leg, status=LegStatus.INVOICED)

    async def _leg_succeeded(self, ph: str, leg: LegRecord, how: str) -> bool:
        """Record the leg as paid; False if it had moved elsewhere meanwhile (nothing written)."""
        event = "base_forwarded" if leg.leg == BASE_LEG else "tip_sent"
        return await self._pg.legs.transition(
            ph, leg.leg, {leg.status, LegStatus.PAYING}, LegStatus.SUCCEEDED,
            event_type=event,
            event_data={"leg": leg.leg, "amount": leg.amount, "recipient": leg.destination_username,
                        "destPaymentHash": leg.dest_payment_hash, "result": how},
        )

    async def _leg_failed(
        self, ph: str, leg: LegRecord, from_statuses: set[LegStatus], reason: str, *, counted: bool
    ) -> None:
        attempts = leg.attempts + (1 if counted else 0)
        retry_at = datetime.now(UTC) + timedelta(seconds=self._policy.retry.delay(attempts))
        log.warning("settlement.leg_failed", payment_hash=ph, leg=leg.leg, attempts=attempts, error=reason)
        await self._pg.legs.transition(
            ph, leg.leg, from_statuses, LegStatus.FAILED, error=reason, count_attempt=counted,
            next_attempt_at=retry_at, event_type="leg_failed",
            event_data={"leg": leg.leg, "attempts": attempts, "error": reason},
        )

    # -- the payment's fate, decided once every leg has taken its step ---------

    async def _conclude(self, ph: str, lock_token: str | None, *, all_settled: bool) -> SettleResult:
        """Archive a finished payment, fail an exhausted one, or schedule the next look.

        With `all_settled` (every leg was final already or recorded as
        succeeded in this round) the payment is completed without reading its
        legs back: the completing statement checks them itself. Otherwise the
        legs are read once to decide. Archiving releases the caller's Redis
        lock (`lock_token`) in the same round trip as the cache.
        """
        if all_settled:
            return await self._complete(ph, lock_token)
        payment = await self._pg.payments.get(ph)
        if payment is None:
            return SettleResult(Outcome.NOT_FOUND, "not_found")
        legs = payment.legs
        if all(leg.status in FINAL_LEG_STATUSES for leg in legs):
            return await self._complete(ph, lock_token)
        exhausted = [
            leg for leg in legs if leg.status == LegStatus.FAILED and self._policy.retry.exhausted(leg.attempts)
        ]
        unresolved = [leg for leg in legs if leg.status == LegStatus.PAYING]
        if exhausted and not unresolved:
            return await self._fail(ph, "; ".join(f"{leg.leg}: {leg.last_error}" for leg in exhausted), lock_token)
        await self._pg.claims.renew(ph, self._owner, self._next_look(legs))
        return SettleResult(Outcome.IN_PROGRESS, PaymentStatus.PROCESSING.value)

    async def _complete(self, ph: str, lock_token: str | None) -> SettleResult:
        """Every leg is paid (or skipped): archive the payment as completed and release the lock with the cache."""
        archived = await self._pg.outcomes.complete(ph, self._owner, {"success": True})
        await self._forget_archived(ph, archived, PaymentStatus.COMPLETED, lock_token)
        return SettleResult(Outcome.COMPLETED, PaymentStatus.COMPLETED.value, lock_released=lock_token is not None)

    async def _fail(self, ph: str, reason: str, lock_token: str | None) -> SettleResult:
        """A leg used up its attempts with no send in flight: the payment is failed, which is final.

        Nothing takes a failed payment up again on its own; an operator's
        retry (`operator_retry.py`) gives its failed legs fresh attempts.
        """
        archived = await self._pg.outcomes.fail(ph, self._owner, reason)
        await self._forget_archived(ph, archived, PaymentStatus.FAILED, lock_token)
        return SettleResult(Outcome.FAILED, PaymentStatus.FAILED.value, lock_released=lock_token is not None)

    async def _forget_archived(
        self, ph: str, archived: Archived | None, status: PaymentStatus, lock_token: str | None
    ) -> None:
        """After archiving: one Redis round trip drops the cache entry and the stats it made stale, and frees the lock.

        `archived` is None when the claim was no longer ours; that is fine only
        if the payment is already `status` (another settler archived it), and
        refused (PaymentStateError) otherwise.
        """
        recipients = archived.recipients if archived is not None else await self._pg.outcomes.archived_as(ph, status)
        today = datetime.now(UTC).date()
        await if_up(self._hot, lambda hot: hot.forget_payment(ph, today, recipients, lock_token=lock_token))

    def _next_look(self, legs: list[LegRecord]) -> int:
        """Seconds until the reconciler takes this payment up again, when its lease runs out.

        An unresolved send is looked at again soon; otherwise at the earliest
        retry time of a failed leg.
        """
        unsettled = [leg for leg in legs if leg.status in (LegStatus.PAYING, LegStatus.INVOICED)]
        if unsettled:
            attempts = max(leg.attempts for leg in unsettled)
            return max(1, int(min(UNRESOLVED_RECHECK_SECONDS, self._policy.retry.delay(attempts))))
        now = datetime.now(UTC)
        retry_times = [
            leg.next_attempt_at
            for leg in legs
            if leg.status in (LegStatus.FAILED, LegStatus.PENDING) and leg.next_attempt_at
        ]
        if not retry_times:
            return int(UNRESOLVED_RECHECK_SECONDS)
        return max(1, int((min(retry_times) - now).total_seconds() + 0.999))


def _due(leg: LegRecord) -> bool:
    return leg.next_attempt_at is None or leg.next_attempt_at <= datetime.now(UTC)

