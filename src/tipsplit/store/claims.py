"""Claims: which settler works on a payment, under a lease, and the work queues settlers take payments from.

A claim is a conditional UPDATE of payment_splits (never read-then-write):
of any number of concurrent claimers exactly one gets the payment. Each change
writes its payment_events row in the same statement.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tipsplit.domain.records import PaymentRecord
from tipsplit.domain.retry import RetryPolicy
from tipsplit.domain.states import (
    CLAIMABLE,
    CLAIMED,
    RECLAIMABLE,
    RELEASE_TARGETS,
    PaymentStatus,
    payment_moves_from,
    values,
)
from tipsplit.store.changes import changes_payment
from tipsplit.store.database import Connection, Database, Repository
from tipsplit.store.events import scrub
from tipsplit.store.legs import LEGS_ARRAY
from tipsplit.store.payments import PAYMENT_COLUMNS, RECIPIENT_ARRAYS, payment_record, payment_with_details

# The POS accounts a caller settles for: their wallet ids, and the one that stands for payments stored without one.
PosScope = tuple[list[str], str | None]

CLAIM = f"""
    WITH before AS (
        SELECT status, claim_owner, paid_at FROM payment_splits WHERE payment_hash = $1 FOR UPDATE
    ), claimed AS (
        UPDATE payment_splits
        SET status = $5, claim_owner = $2,
            claim_expires_at = now() + make_interval(secs => $3::float8),
            settle_attempts = settle_attempts + 1, next_attempt_at = NULL, updated_at = now(),
            paid_at = CASE WHEN $6::bool THEN COALESCE(payment_splits.paid_at, now()) ELSE payment_splits.paid_at END
        FROM before
        WHERE payment_hash = $1
          AND (payment_splits.status = ANY($4::text[])
               OR (payment_splits.status = $5 AND claim_expires_at < now()))
        RETURNING {", ".join("payment_splits." + c.strip() for c in PAYMENT_COLUMNS.split(","))},
                  before.status AS previous_status, before.claim_owner AS previous_owner,
                  before.paid_at IS NULL AND payment_splits.paid_at IS NOT NULL AS newly_paid
    ), event AS (
        INSERT INTO payment_events (payment_hash, event_type, event_data)
        SELECT payment_hash, e.event_type, e.event_data
        FROM claimed, LATERAL (VALUES
            (1, 'claimed', jsonb_build_object(
                'owner', $2::text, 'previousStatus', previous_status, 'previousOwner', previous_owner,
                'attempt', settle_attempts)),
            (2, 'paid', CASE WHEN newly_paid THEN jsonb_build_object('owner', $2::text) END)
        ) AS e(n, event_type, event_data)
        WHERE e.event_data IS NOT NULL
        ORDER BY e.n
    )
"""
# The claimed payment alone, or with its recipients and legs read in the same statement.
CLAIM_BARE = CLAIM + "SELECT * FROM claimed"
CLAIM_WITH_DETAILS = CLAIM + f"""
    SELECT claimed.*, r.positions, r.usernames, r.shares, {LEGS_ARRAY.replace("p.payment_hash", "claimed.payment_hash")}
    FROM claimed LEFT JOIN LATERAL ({RECIPIENT_ARRAYS.replace("p.payment_hash", "claimed.payment_hash")}) r ON true
"""


class Claims(Repository):
    """Taking, keeping and giving back payments, and finding the ones due for work."""

    def __init__(self, db: Database, retry: RetryPolicy | None = None) -> None:
        super().__init__(db)
        self._retry = retry or RetryPolicy()

    @changes_payment()
    async def claim(
        self, payment_hash: str, owner: str, lease_seconds: float, *, allow_failed: bool = False,
        details: bool = True, paid: bool = False, conn: Connection | None = None,
    ) -> PaymentRecord | None:
        """Take the payment for settlement, or None if someone else holds it or it is finished.

        Claimable: pending, expired, processing with a lapsed lease, and failed
        when `allow_failed`. One statement locks the row (concurrent claimers
        queue on it), applies the conditional UPDATE that lets exactly one of
        them through (re-checked on the newest row version), and writes the
        `claimed` event. `paid` says Blink has just called the POS invoice
        paid: the claim records it too (with its `paid` event, the first time
        only), as `mark_paid` would. With `details` the recipients and legs are
        read in the same statement.
        """
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(
                CLAIM_WITH_DETAILS if details else CLAIM_BARE,
                payment_hash, owner, float(lease_seconds),
                payment_moves_from(PaymentStatus.PROCESSING, RECLAIMABLE if allow_failed else CLAIMABLE),
                PaymentStatus.PROCESSING.value, paid,
            )
        if row is None:
            return None
        return payment_with_details(row) if details else payment_record(row)

    async def renew(self, payment_hash: str, owner: str, lease_seconds: float, *, conn: Connection | None = None) -> bool:
        """Extend the lease; False if the claim was lost (then stop working on the payment)."""
        async with self.db.connection(conn) as c:
            result = await c.execute(
                """
                UPDATE payment_splits
                SET claim_expires_at = now() + make_interval(secs => $3::float8), updated_at = now()
                WHERE payment_hash = $1 AND claim_owner = $2 AND status = ANY($4::text[])
                """,
                payment_hash,
                owner,
                float(lease_seconds),
                values(CLAIMED),
            )
        return result.endswith(" 1")

    @changes_payment()
    async def release(
        self,
        payment_hash: str,
        owner: str,
        status: PaymentStatus,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
        *,
        conn: Connection | None = None,
    ) -> bool:
        """Give the payment back (e.g. not paid yet → pending, invoice expired → expired)."""
        status = PaymentStatus(status)
        if status not in RELEASE_TARGETS:
            raise ValueError(f"a claim cannot be released to {status.value!r}")
        async with self.db.connection(conn) as c:
            released = await c.fetchval(
                """
                WITH released AS (
                    UPDATE payment_splits
                    SET status = $3, claim_owner = NULL, claim_expires_at = NULL, next_attempt_at = $4,
                        updated_at = now()
                    WHERE payment_hash = $1 AND claim_owner = $2 AND status = ANY($5::text[])
                    RETURNING payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, $6, $7::jsonb FROM released
                )
                SELECT count(*) FROM released
                """,
                payment_hash,
                owner,
                status.value,
                next_attempt_at,
                payment_moves_from(status, CLAIMED),
                event_type,
                {"owner": owner, "status": status.value, **scrub(data)},
            )
        return bool(released)

    async def expire(self, payment_hash: str, owner: str, *, conn: Connection | None = None) -> bool:
        """Mark a claimed payment whose invoice expired unpaid."""
        return await self.release(payment_hash, owner, PaymentStatus.EXPIRED, "expired", {}, conn=conn)

    @changes_payment()
    async def mark_paid(self, payment_hash: str, owner: str, *, conn: Connection | None = None) -> bool:
        """Record that Blink says the POS invoice is paid; True only the first time."""
        async with self.db.connection(conn) as c:
            paid = await c.fetchval(
                """
                WITH paid AS (
                    UPDATE payment_splits SET paid_at = now(), updated_at = now()
                    WHERE payment_hash = $1 AND claim_owner = $2 AND status = ANY($3::text[]) AND paid_at IS NULL
                    RETURNING payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, 'paid', jsonb_build_object('owner', $2::text) FROM paid
                )
                SELECT count(*) FROM paid
                """,
                payment_hash,
                owner,
                values(CLAIMED),
            )
        return bool(paid)

    # -- work queues for the poller and reconciler ---------------------------

    async def pending(
        self, limit: int = 100, after: str | None = None, accounts: PosScope | None = None,
        *, conn: Connection | None = None,
    ) -> list[str]:
        """Hashes of pending payments in hash order after `after`, so a poller can page through all of them.

        With `accounts`, only the payments received by those POS accounts: each is settled from its own account.
        """
        wallets, default = accounts or (None, None)
        rows = await self.db.read(
            lambda c: c.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = $5 AND payment_hash > $2"
                " AND ($3::text[] IS NULL OR COALESCE(pos_wallet_id, $4) = ANY($3::text[]))"
                " ORDER BY payment_hash LIMIT $1",
                limit,
                after or "",
                wallets,
                default,
                PaymentStatus.PENDING.value,
            ),
            conn,
        )
        return [r["payment_hash"] for r in rows]

    async def stale(
        self, limit: int = 100, accounts: PosScope | None = None, *, conn: Connection | None = None
    ) -> list[str]:
        """Hashes of payments whose settler stopped renewing its lease (crashed, stuck, or waiting to look again)."""
        wallets, default = accounts or (None, None)
        rows = await self.db.read(
            lambda c: c.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = ANY($4::text[]) AND claim_expires_at < now()"
                " AND ($2::text[] IS NULL OR COALESCE(pos_wallet_id, $3) = ANY($2::text[]))"
                " ORDER BY claim_expires_at LIMIT $1",
                limit,
                wallets,
                default,
                values(CLAIMED),
            ),
            conn,
        )
        return [r["payment_hash"] for r in rows]

    async def retryable_failed(self, now: datetime, limit: int = 100, *, conn: Connection | None = None) -> list[str]:
        """Hashes of failed payments due for another attempt."""
        rows = await self.db.read(
            lambda c: c.fetch(
                "SELECT payment_hash FROM payment_splits WHERE status = $4 AND next_attempt_at <= $1"
                " AND settle_attempts < $2 ORDER BY next_attempt_at LIMIT $3",
                now,
                self._retry.attempts,
                limit,
                PaymentStatus.FAILED.value,
            ),
            conn,
        )
        return [r["payment_hash"] for r in rows]
