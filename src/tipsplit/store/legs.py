"""A payment's outgoing legs (payment_legs): the base to the merchant and one per tip recipient.

Every change is one statement: the conditional UPDATE (the leg's status is one
the caller expects and `domain.states.LEG_MOVES` allows) and, only if it
matched, its payment_events row, so the state and the trail never disagree.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tipsplit.domain.records import LegRecord
from tipsplit.domain.states import (
    LEG_MOVES,
    LEG_WAITABLE,
    LEG_WALLET_SETTABLE,
    LEGS_RESET,
    LEGS_RESETTABLE,
    FINAL_LEG_STATUSES,
    LegStatus,
    WalletCurrency,
    leg_moves_from,
    values,
)
from tipsplit.store.changes import changes_payment
from tipsplit.store.database import Connection, Repository
from tipsplit.store.events import scrub

LEG_COLUMNS = (
    "payment_hash, leg, amount, status, destination_username, destination_wallet_id, share, memo,"
    " dest_payment_hash, dest_payment_request, attempts, last_error, next_attempt_at, created_at,"
    " updated_at, completed_at, invoice_generation, waiting_for, destination_currency"
)
LEG_ORDER = "(leg <> 'base'), NULLIF(substring(leg from 5), '')::int"
# For a SELECT on payment_splits `p`: its legs in order, as rows of payment_legs, read in the same statement.
LEGS_ARRAY = (
    "ARRAY(SELECT l FROM payment_legs l WHERE l.payment_hash = p.payment_hash"
    f" ORDER BY {LEG_ORDER.replace('leg', 'l.leg')}) AS legs"
)


def leg_record(row: Mapping[str, Any]) -> LegRecord:
    """A payment_legs row as the domain's record."""
    fields = {key: row[key] for key in row.keys() if key in LegRecord.__dataclass_fields__}
    fields["status"] = LegStatus(row["status"])
    fields["destination_currency"] = WalletCurrency(row["destination_currency"])
    return LegRecord(**fields)


def _moves_through(middle: LegStatus, target: LegStatus, statuses: set[LegStatus]) -> list[str]:
    """The given statuses a leg may leave for `middle` and, unless that is the target, from there for `target`."""
    if target is not middle and middle not in LEG_MOVES[target]:
        raise ValueError(f"a leg cannot move from {middle.value} to {target.value}")
    return leg_moves_from(middle, statuses)


async def load_legs(conn: Connection, payment_hash: str) -> list[asyncpg.Record]:
    """The rows of a payment's legs in order (base, tip:1, …), on the caller's connection."""
    return await conn.fetch(
        f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = $1 ORDER BY {LEG_ORDER}", payment_hash
    )


class Legs(Repository):
    """Reading and moving legs; a leg's destination invoice is stored once, before it is paid."""

    async def of_payment(self, payment_hash: str, *, conn: Connection | None = None) -> list[LegRecord]:
        """The payment's legs in order (base, tip:1, …)."""
        return [leg_record(row) for row in await self.db.read(lambda c: load_legs(c, payment_hash), conn)]

    async def of_payments(
        self, payment_hashes: Sequence[str], *, conn: Connection | None = None
    ) -> dict[str, list[LegRecord]]:
        """The legs of many payments in one query, so an export is not one query per payment."""
        rows = await self.db.read(
            lambda c: c.fetch(
                f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = ANY($1::text[])"
                f" ORDER BY payment_hash, {LEG_ORDER}",
                list(payment_hashes),
            ),
            conn,
        )
        legs: dict[str, list[LegRecord]] = {}
        for row in rows:
            legs.setdefault(row["payment_hash"], []).append(leg_record(row))
        return legs

    async def set_wallet(
        self, payment_hash: str, leg: str, wallet_id: str, currency: WalletCurrency, *, conn: Connection | None = None
    ) -> bool:
        """Remember the wallet (and what it holds) a tip recipient's username resolved to, before its invoice exists."""
        async with self.db.connection(conn) as c:
            moved = await c.fetchval(
                """
                WITH moved AS (
                    UPDATE payment_legs SET destination_wallet_id = $3, destination_currency = $4, updated_at = now()
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($5::text[]) AND dest_payment_hash IS NULL
                    RETURNING payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, 'leg_wallet_resolved', $6::jsonb FROM moved
                )
                SELECT count(*) FROM moved
                """,
                payment_hash,
                leg,
                wallet_id,
                currency.value,
                values(LEG_WALLET_SETTABLE),
                scrub({"leg": leg, "walletId": wallet_id, "currency": currency.value}),
            )
        return bool(moved)

    @changes_payment()
    async def set_invoice(
        self, payment_hash: str, leg: str, dest_hash: str, dest_request: str,
        *, sending: Mapping[str, Any] | None = None, conn: Connection | None = None,
    ) -> LegRecord:
        """Store the destination invoice once, before paying it.

        If the leg already has an invoice the row is returned unchanged and the
        caller must pay *that* invoice: paying it twice is impossible, paying a
        second one would pay twice. With `sending` (the data of its
        `leg_payment_sent` event) the leg goes on to `paying` in the same
        statement, its attempt counted for the send the caller starts next: the
        caller knows the send is its own when the leg comes back `paying` with
        the invoice it gave.
        """
        dest_hash = dest_hash.lower()
        to = LegStatus.PAYING if sending is not None else LegStatus.INVOICED
        sent = None if sending is None else {"leg": leg, "from": LegStatus.INVOICED.value, "to": to.value} | scrub(sending)
        async with self.db.connection(conn) as c:
            row = await c.fetchrow(
                f"""
                WITH invoiced AS (
                    UPDATE payment_legs
                    SET status = $5, dest_payment_hash = $3, dest_payment_request = $4, waiting_for = NULL,
                        next_attempt_at = NULL, attempts = attempts + $9, updated_at = now()
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($6::text[]) AND dest_payment_hash IS NULL
                    RETURNING {LEG_COLUMNS}
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, e.event_type, e.event_data
                    FROM invoiced, (VALUES (1, 'leg_invoiced', $7::jsonb), (2, 'leg_payment_sent', $8::jsonb))
                        AS e(n, event_type, event_data)
                    WHERE e.event_data IS NOT NULL
                    ORDER BY e.n
                )
                SELECT * FROM invoiced
                """,
                payment_hash,
                leg,
                dest_hash,
                dest_request,
                to.value,
                _moves_through(LegStatus.INVOICED, to, {LegStatus.PENDING}),
                scrub({"leg": leg, "destPaymentHash": dest_hash}),
                sent,
                int(sending is not None),
            )
            if row is not None:
                return leg_record(row)
            current = await c.fetchrow(
                f"SELECT {LEG_COLUMNS} FROM payment_legs WHERE payment_hash = $1 AND leg = $2", payment_hash, leg
            )
        if current is None:
            raise LookupError(f"payment {payment_hash} has no leg {leg!r}")
        return leg_record(current)

    @changes_payment()
    async def reset_invoice(
        self, payment_hash: str, leg: str, from_statuses: set[LegStatus], *, conn: Connection | None = None
    ) -> bool:
        """Forget a destination invoice that expired unpaid, so a fresh one (the next generation) can be made.

        The caller has made sure no send to it is pending or succeeded; the old hash is kept in the event.
        """
        async with self.db.connection(conn) as c:
            old_hash = await c.fetchval(
                """
                WITH target AS (
                    SELECT id, dest_payment_hash FROM payment_legs
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($3::text[]) AND dest_payment_hash IS NOT NULL
                    FOR UPDATE
                ), reset AS (
                    UPDATE payment_legs l
                    SET status = $4, dest_payment_hash = NULL, dest_payment_request = NULL,
                        invoice_generation = l.invoice_generation + 1,
                        last_error = 'destination invoice expired unpaid', updated_at = now()
                    FROM target WHERE l.id = target.id
                    RETURNING target.dest_payment_hash AS old_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT $1, 'leg_invoice_expired', jsonb_build_object('leg', $2::text, 'expiredPaymentHash', old_hash)
                    FROM reset
                )
                SELECT old_hash FROM reset
                """,
                payment_hash,
                leg,
                leg_moves_from(LegStatus.FAILED, from_statuses),
                LegStatus.FAILED.value,
            )
        return old_hash is not None

    @changes_payment()
    async def skip_invoice_generation(
        self, payment_hash: str, leg: str, generation: int, external_id: str, *, conn: Connection | None = None
    ) -> bool:
        """Move a leg with no stored invoice past a generation whose invoice exists on Blink but was never stored.

        That invoice was created by an attempt that crashed or lost Blink's answer;
        its hash was never recorded, so nothing can pay it and it expires unpaid.
        """
        async with self.db.connection(conn) as c:
            moved = await c.fetchval(
                """
                WITH moved AS (
                    UPDATE payment_legs SET invoice_generation = invoice_generation + 1, updated_at = now()
                    WHERE payment_hash = $1 AND leg = $2 AND invoice_generation = $3 AND dest_payment_hash IS NULL
                    RETURNING payment_hash
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT payment_hash, 'leg_invoice_unrecorded', $4::jsonb FROM moved
                )
                SELECT count(*) FROM moved
                """,
                payment_hash,
                leg,
                generation,
                scrub({"leg": leg, "externalId": external_id}),
            )
        return bool(moved)

    @changes_payment()
    async def wait(
        self, payment_hash: str, leg: str, until: datetime, reason: str, *, conn: Connection | None = None
    ) -> bool:
        """Hold a leg that has no invoice yet until `until`: not an attempt, not a failure, just not now.

        The first wait for a reason is written to the trail; the looks after it only move the time.
        """
        async with self.db.connection(conn) as c:
            moved = await c.fetchval(
                """
                WITH target AS (
                    SELECT id, waiting_for FROM payment_legs
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($5::text[]) AND dest_payment_hash IS NULL
                    FOR UPDATE
                ), waiting AS (
                    UPDATE payment_legs l SET next_attempt_at = $3, waiting_for = $4, updated_at = now()
                    FROM target WHERE l.id = target.id
                    RETURNING target.waiting_for AS previous
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT $1, 'leg_waiting', $6::jsonb FROM waiting WHERE previous IS DISTINCT FROM $4::text
                )
                SELECT count(*) FROM waiting
                """,
                payment_hash,
                leg,
                until,
                reason,
                values(LEG_WAITABLE),
                scrub({"leg": leg, "for": reason, "until": until}),
            )
        return bool(moved)

    @changes_payment()
    async def transition(
        self,
        payment_hash: str,
        leg: str,
        from_statuses: set[LegStatus],
        to: LegStatus,
        *,
        error: str | None = None,
        count_attempt: bool = False,
        take_back_attempt: bool = False,
        next_attempt_at: datetime | None = None,
        event_type: str | None = None,
        event_data: Mapping[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> bool:
        """Move a leg from one of `from_statuses` to `to`; False (and nothing written) if it was elsewhere.

        Only the statuses `domain.states.LEG_MOVES` allows into `to` are taken from `from_statuses`.
        `take_back_attempt` undoes the count of a send that never reached Blink (its event says so),
        in the same statement that moves the leg back.
        """
        if count_attempt and take_back_attempt:
            raise ValueError("a transition either counts an attempt or takes one back")
        to = LegStatus(to)
        extra = (
            ({"error": error} if error is not None else {})
            | ({"attemptTakenBack": True} if take_back_attempt else {})
            | scrub(event_data)
        )
        async with self.db.connection(conn) as c:
            moved = await c.fetchval(
                """
                WITH target AS (
                    SELECT id, status FROM payment_legs
                    WHERE payment_hash = $1 AND leg = $2 AND status = ANY($3::text[]) FOR UPDATE
                ), moved AS (
                    UPDATE payment_legs l
                    SET status = $4::text, last_error = COALESCE($5::text, l.last_error),
                        attempts = GREATEST(l.attempts + $6::int, 0), next_attempt_at = $7, updated_at = now(),
                        completed_at = CASE WHEN $4::text = ANY($10::text[]) THEN now() ELSE l.completed_at END
                    FROM target WHERE l.id = target.id
                    RETURNING target.status AS previous
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT $1, $8, jsonb_build_object('leg', $2::text, 'from', previous, 'to', $4::text) || $9::jsonb
                    FROM moved
                )
                SELECT count(*) FROM moved
                """,
                payment_hash,
                leg,
                leg_moves_from(to, from_statuses),
                to.value,
                error,
                int(count_attempt) - int(take_back_attempt),
                next_attempt_at,
                event_type or f"leg_{to.value}",
                extra,
                values(FINAL_LEG_STATUSES),
            )
        return bool(moved)

    @changes_payment()
    async def reset_failed(self, payment_hash: str, reason: str, *, conn: Connection | None = None) -> list[str]:
        """Give a failed payment's failed legs fresh attempts, due now; returns the legs reset.

        Only while the payment is `failed`; the legs keep their destination
        invoice, so the settler resumes by asking Blink about it (never a second payment).
        """
        async with self.db.connection(conn) as c:
            rows = await c.fetch(
                """
                WITH reset AS (
                    UPDATE payment_legs l SET attempts = 0, next_attempt_at = NULL, updated_at = now()
                    FROM payment_splits p
                    WHERE l.payment_hash = $1 AND p.payment_hash = l.payment_hash
                      AND p.status = ANY($3::text[]) AND l.status = ANY($4::text[])
                    RETURNING l.leg
                ), event AS (
                    INSERT INTO payment_events (payment_hash, event_type, event_data)
                    SELECT $1, 'legs_reset', jsonb_build_object('legs', jsonb_agg(leg), 'reason', $2::text)
                    FROM reset HAVING count(*) > 0
                )
                SELECT leg FROM reset
                """,
                payment_hash,
                reason,
                values(LEGS_RESETTABLE),
                values(LEGS_RESET),
            )
        return [row["leg"] for row in rows]

