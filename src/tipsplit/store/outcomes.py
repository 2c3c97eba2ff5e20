"""How a payment ends: completed once every leg is settled, failed (final until an operator retries), or expired unpaid.

Each outcome archives the payment: its final status, its event and, for a
completion, the tip recipients' lifetime statistics, all committed together.
Each returns the payment's tip recipients (whose cached statistics are now stale).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from tipsplit.domain.records import Archived
from tipsplit.domain.retry import RetryPolicy
from tipsplit.domain.states import (
    BASE_LEG,
    CLAIMED,
    EXPIRABLE,
    FINAL_LEG_STATUSES,
    RECLAIMABLE,
    LegStatus,
    PaymentStatus,
    payment_moves_from,
    values,
)
from tipsplit.store.changes import changes_payment, changes_payments
from tipsplit.store.database import Connection, Database, Repository
from tipsplit.store.errors import PaymentStateError, StorageUnavailable
from tipsplit.store.events import scrub
from tipsplit.store.group_commit import GroupCommit
from tipsplit.store.legs import LEG_ORDER
from tipsplit.store.payments import RECIPIENT_USERNAMES

COMPLETE = f"""
    WITH target AS (
        SELECT payment_hash FROM payment_splits
        WHERE payment_hash = $1 AND status = ANY($3::text[]) AND claim_owner = $2
        FOR UPDATE
    ), legs AS (
        SELECT leg, status, amount, destination_username, dest_payment_hash, row_number() OVER (ORDER BY {LEG_ORDER}) AS n
        FROM payment_legs WHERE payment_hash = $1 AND EXISTS (SELECT 1 FROM target)
    ), still_open AS (
        SELECT array_agg(leg ORDER BY n) AS names FROM legs WHERE status <> ALL($4::text[])
    ), completed AS (
        UPDATE payment_splits
        SET status = $5, processed_at = now(), updated_at = now(), claim_owner = NULL,
            claim_expires_at = NULL, next_attempt_at = NULL, error_message = NULL,
            user_payment_hash = (SELECT dest_payment_hash FROM legs WHERE leg = $6),
            tip_payment_hash = (
                SELECT dest_payment_hash FROM legs WHERE leg <> $6 AND dest_payment_hash IS NOT NULL ORDER BY n LIMIT 1)
        FROM target
        WHERE payment_splits.payment_hash = target.payment_hash AND (SELECT names FROM still_open) IS NULL
        RETURNING payment_splits.payment_hash, payment_splits.user_payment_hash, payment_splits.tip_payment_hash,
                  {RECIPIENT_USERNAMES}
    ), stats AS (
        INSERT INTO tip_recipients_stats AS s (recipient_username, total_tips_received, total_tips_count,
            average_tip_amount, first_tip_received_at, last_tip_received_at)
        SELECT destination_username, amount, 1, amount, now(), now()
        FROM legs
        WHERE leg <> $6 AND status = $7 AND amount > 0 AND destination_username IS NOT NULL
          AND EXISTS (SELECT 1 FROM completed)
        ORDER BY destination_username
        ON CONFLICT (recipient_username) DO UPDATE SET
            total_tips_received = s.total_tips_received + EXCLUDED.total_tips_received,
            total_tips_count = s.total_tips_count + 1,
            average_tip_amount = round(
                (s.total_tips_received + EXCLUDED.total_tips_received)::numeric / (s.total_tips_count + 1), 2),
            first_tip_received_at = COALESCE(s.first_tip_received_at, now()),
            last_tip_received_at = now(),
            updated_at = now()
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT payment_hash, 'completed', jsonb_build_object(
            'owner', $2::text, 'userPaymentHash', user_payment_hash, 'tipPaymentHash', tip_payment_hash,
            'legs', (SELECT COALESCE(jsonb_agg(jsonb_build_object('leg', leg, 'status', status, 'amount', amount)
                                               ORDER BY n), '[]'::jsonb) FROM legs),
            'result', $8::jsonb)
        FROM completed
    )
    SELECT EXISTS (SELECT 1 FROM target) AS claimed, (SELECT names FROM still_open) AS open_legs,
           (SELECT recipients FROM completed) AS recipients
"""

FAIL = f"""
    WITH failed AS (
        UPDATE payment_splits
        SET status = $5, error_message = $3, processed_at = now(), updated_at = now(),
            claim_owner = NULL, claim_expires_at = NULL,
            next_attempt_at = now() + make_interval(secs => ($4::float8[])[settle_attempts])
        WHERE payment_hash = $1 AND claim_owner = $2 AND status = ANY($6::text[])
        RETURNING payment_hash, settle_attempts, next_attempt_at, {RECIPIENT_USERNAMES}
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT payment_hash, 'failed', jsonb_build_object(
            'owner', $2::text, 'error', $3::text, 'attempts', settle_attempts,
            'nextAttemptAt', next_attempt_at)
        FROM failed
    )
    SELECT recipients FROM failed
"""

FAIL_UNCLAIMED = f"""
    WITH before AS (
        SELECT status, claim_owner FROM payment_splits WHERE payment_hash = $1 FOR UPDATE
    ), failed AS (
        UPDATE payment_splits
        SET status = $5, error_message = $3, processed_at = now(), updated_at = now(),
            claim_owner = NULL, claim_expires_at = NULL, settle_attempts = settle_attempts + 1,
            next_attempt_at = now() + make_interval(secs => ($4::float8[])[settle_attempts + 1])
        FROM before
        WHERE payment_hash = $1
          AND (payment_splits.status = ANY($6::text[])
               OR (payment_splits.status = ANY($7::text[]) AND claim_expires_at < now()))
        RETURNING payment_hash, settle_attempts, next_attempt_at, before.status AS previous_status,
                  before.claim_owner AS previous_owner, {RECIPIENT_USERNAMES}
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT payment_hash, 'failed', jsonb_build_object(
            'owner', $2::text, 'error', $3::text, 'attempts', settle_attempts,
            'nextAttemptAt', next_attempt_at, 'previousStatus', previous_status,
            'previousOwner', previous_owner)
        FROM failed
    )
    SELECT recipients FROM failed
"""

# FAIL_UNCLAIMED for several payments at once (group commit); a lone failure keeps the one-row statement.
FAIL_UNCLAIMED_MANY = f"""
    WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS i(hash, fail_owner, fail_error)
    ), before AS (
        SELECT p.payment_hash, p.status, p.claim_owner, input.fail_owner, input.fail_error
        FROM payment_splits p JOIN input ON input.hash = p.payment_hash
        WHERE p.payment_hash = ANY($1::text[])
        ORDER BY p.payment_hash
        FOR UPDATE OF p
    ), failed AS (
        UPDATE payment_splits
        SET status = $5, error_message = before.fail_error, processed_at = now(), updated_at = now(),
            claim_owner = NULL, claim_expires_at = NULL, settle_attempts = settle_attempts + 1,
            next_attempt_at = now() + make_interval(secs => ($4::float8[])[settle_attempts + 1])
        FROM before
        WHERE payment_splits.payment_hash = ANY($1::text[]) AND payment_splits.payment_hash = before.payment_hash
          AND (payment_splits.status = ANY($6::text[])
               OR (payment_splits.status = ANY($7::text[]) AND claim_expires_at < now()))
        RETURNING payment_splits.payment_hash, settle_attempts, next_attempt_at, before.status AS previous_status,
                  before.claim_owner AS previous_owner, before.fail_owner, before.fail_error, {RECIPIENT_USERNAMES}
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT payment_hash, 'failed', jsonb_build_object(
            'owner', fail_owner, 'error', fail_error, 'attempts', settle_attempts,
            'nextAttemptAt', next_attempt_at, 'previousStatus', previous_status,
            'previousOwner', previous_owner)
        FROM failed
    )
    SELECT payment_hash, recipients FROM failed
"""


class Outcomes(Repository):
    """Completing, failing and expiring payments."""

    def __init__(self, db: Database, retry: RetryPolicy | None = None) -> None:
        super().__init__(db)
        self._retry = retry or RetryPolicy()
        self._unclaimed_failures: GroupCommit[tuple[str, str, str], Archived | None] = GroupCommit(
            self._fail_unclaimed_many, key=lambda failure: failure[0], shared_failures=(StorageUnavailable,)
        )

    @changes_payment()
    async def complete(
        self, payment_hash: str, owner: str, result: Mapping[str, Any], *, conn: Connection | None = None
    ) -> Archived | None:
        """Archive a settled payment: status, result hashes, event and recipient stats in one statement.

        Refuses (PaymentStateError) while any leg is neither succeeded nor
        skipped: a payment is never called completed with money still owed.
        None when `owner` does not hold the claim (nothing changed). The
        statement locks the claimed payment, reads its legs, and archives only
        if every leg is settled; the result hashes, the recipients' statistics
        and the event's leg list come from those same legs.
        """
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(
                COMPLETE,
                payment_hash,
                owner,
                payment_moves_from(PaymentStatus.COMPLETED, CLAIMED),
                values(FINAL_LEG_STATUSES),
                PaymentStatus.COMPLETED.value,
                BASE_LEG,
                LegStatus.SUCCEEDED.value,
                scrub(result),
            )
        if row is None or not row["claimed"]:
            return None
        if row["open_legs"]:
            raise PaymentStateError(
                f"payment {payment_hash} cannot be completed: legs {', '.join(row['open_legs'])} are not settled"
            )
        return Archived(tuple(row["recipients"]))

    @changes_payment()
    async def fail(
        self, payment_hash: str, owner: str, error: str, *, conn: Connection | None = None
    ) -> Archived | None:
        """Mark a claimed payment failed, which is final: nothing takes it up again on its own.

        The reconciler resumes only lapsed claims (`Claims.stale`); a failed
        payment is settled again only by an operator's retry. `next_attempt_at`
        is when it is due for one by the shared retry policy (indexed by
        `settle_attempts`), NULL once its attempts are used up; the dashboard
        counts those due (`Claims.retryable_failed`). None when `owner` does
        not hold the claim (nothing changed). One statement: the conditional
        UPDATE and, only if it matched, the `failed` event and the recipients.
        """
        return await self._archived(
            FAIL,
            conn,
            payment_hash,
            owner,
            error,
            self._retry.schedule(),
            PaymentStatus.FAILED.value,
            payment_moves_from(PaymentStatus.FAILED, CLAIMED),
        )

    @changes_payment()
    async def fail_unclaimed(
        self, payment_hash: str, owner: str, error: str, *, conn: Connection | None = None
    ) -> Archived | None:
        """Fail a payment nobody holds, in one statement: what `claim` then `fail` do, in one round trip.

        Takes the same payments `claim(allow_failed=True)` would (pending,
        expired, failed, or processing with a lapsed lease), counts the attempt
        and schedules the retry as `fail` does, and writes one `failed` event
        naming the previous status and owner. None when the payment is held by
        a live claim, finished, or not stored (nothing changed). Without the
        caller's connection, concurrent failures share the statement and its
        commit (group commit).
        """
        if conn is not None:
            return (await self._fail_unclaimed_many([(payment_hash, owner, error)], conn))[0]
        return await self._unclaimed_failures.submit((payment_hash, owner, error))

    async def _fail_unclaimed_many(
        self, failures: Sequence[tuple[str, str, str]], conn: Connection | None = None
    ) -> list[Archived | None]:
        """FAIL_UNCLAIMED for several payments (distinct hashes) at once; one answer per failure, in order."""
        if len(failures) == 1:
            payment_hash, owner, error = failures[0]
            return [await self._archived(
                FAIL_UNCLAIMED, conn, payment_hash, owner, error, self._retry.schedule(), PaymentStatus.FAILED.value,
                payment_moves_from(PaymentStatus.FAILED, RECLAIMABLE), payment_moves_from(PaymentStatus.FAILED, CLAIMED),
            )]
        async with self.db.connection(conn) as c:
            rows = await c.fetch(
                FAIL_UNCLAIMED_MANY,
                [payment_hash for payment_hash, _, _ in failures],
                [owner for _, owner, _ in failures],
                [error for _, _, error in failures],
                self._retry.schedule(),
                PaymentStatus.FAILED.value,
                payment_moves_from(PaymentStatus.FAILED, RECLAIMABLE),
                payment_moves_from(PaymentStatus.FAILED, CLAIMED),
            )
        archived = {row["payment_hash"]: Archived(tuple(row["recipients"])) for row in rows}
        return [archived.get(payment_hash) for payment_hash, _, _ in failures]

    async def archived_as(
        self, payment_hash: str, status: PaymentStatus, *, conn: Connection | None = None
    ) -> tuple[str, ...]:
        """The tip recipients of a payment already archived as `status` (a repeat, or another settler's work).

        PaymentStateError when it is not stored or stands elsewhere: nobody may
        archive a payment someone else is still working on.
        """
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(
                f"SELECT status, claim_owner, {RECIPIENT_USERNAMES} FROM payment_splits WHERE payment_hash = $1",
                payment_hash,
            )
        if row is None:
            raise PaymentStateError(f"payment {payment_hash} is not stored")
        if row["status"] != status.value:
            raise PaymentStateError(
                f"payment {payment_hash} is {row['status']}"
                + (f" (claimed by {row['claim_owner']})" if row["claim_owner"] else "")
                + f"; it cannot be marked {status.value} now"
            )
        return tuple(row["recipients"])

    async def _archived(self, statement: str, conn: Connection | None, *arguments: Any) -> Archived | None:
        """Run one archiving statement; the tip recipients of the payment it changed, or None if none."""
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(statement, *arguments)
        return Archived(tuple(row["recipients"])) if row is not None else None

    @changes_payments
    async def archive_expired(
        self, payment_hashes: Sequence[str], event_type: str, data: Mapping[str, Any], *, conn: Connection | None = None
    ) -> list[str]:
        """Pending payments whose invoice expired → expired, never pending again; returns those it moved.

        Conditional on `pending` and a past expiry, so a payment a settler has
        claimed meanwhile is left to it.
        """
        async with self.db.connection(conn) as c:
            rows = await c.fetch(
                """
                WITH moved AS (
                    UPDATE payment_splits SET status = $2, updated_at = now()
                    WHERE payment_hash = ANY($1::text[]) AND status = ANY($3::text[]) AND expires_at <= now()
                    RETURNING payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, $4, $5::jsonb FROM moved
                )
                SELECT payment_hash FROM moved
                """,
                list(payment_hashes),
                PaymentStatus.EXPIRED.value,
                payment_moves_from(PaymentStatus.EXPIRED, EXPIRABLE),
                event_type,
                scrub(data),
            )
        return [row["payment_hash"] for row in rows]
