"""Migrations: an empty database gets the whole schema, once, even with several instances starting together."""

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tipsplit.store.schema import apply_migrations, libpq_url, pending_migrations, yoyo_url

TABLES = {
    "payment_splits",
    "payment_tip_recipients",
    "payment_legs",
    "payment_events",
    "tip_recipients_stats",
    "system_metrics",
    "tills",
    "till_sales",
}


MIGRATIONS = ["0001_initial", "0002_pos_accounts_and_leg_invoices", "0003_tills"]


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_empty_database_gets_the_schema(fresh_database_url: str) -> None:
    assert pending_migrations(fresh_database_url) == MIGRATIONS
    assert apply_migrations(fresh_database_url) == MIGRATIONS
    assert apply_migrations(fresh_database_url) == []

    tables = {row[0] for row in query(fresh_database_url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert TABLES <= tables

    columns = dict(
        query(
            fresh_database_url,
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'payment_splits'",
        )
    )
    assert columns["total_amount"] == "bigint"
    assert columns["created_at"] == "timestamp with time zone"
    assert columns["tip_amount_display"] == "numeric"
    for name in ("payment_request", "expires_at", "claim_owner", "claim_expires_at", "settle_attempts", "next_attempt_at"):
        assert name in columns
    assert dict(query(fresh_database_url, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'payment_events'"))["event_data"] == "jsonb"

    checks = {
        row[0]: row[1]
        for row in query(
            fresh_database_url,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'",
        )
    }
    assert "total_amount = (base_amount + tip_amount)" in checks["payment_splits_total_is_base_plus_tip"]
    assert "'pending'" in checks["payment_splits_status_valid"] and "'expired'" in checks["payment_splits_status_valid"]
    assert "tip:" in checks["payment_legs_leg_name"]

    uniques = {row[0] for row in query(fresh_database_url, "SELECT conname FROM pg_constraint WHERE contype IN ('u', 'f')")}
    assert {"payment_legs_unique_leg", "payment_tip_recipients_unique_position"} <= uniques

    indexes = {row[0]: row[1] for row in query(fresh_database_url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    for name in (
        "idx_payment_splits_status",
        "idx_payment_splits_created_at",
        "idx_payment_splits_user_wallet",
        "idx_payment_splits_tip_recipient",
        "idx_payment_splits_expires_at",
        "idx_payment_events_payment",
    ):
        assert name in indexes
    assert "WHERE" in indexes["idx_payment_splits_active"]
    assert "UNIQUE" in indexes["idx_payment_legs_dest_hash"] and "WHERE" in indexes["idx_payment_legs_dest_hash"]


def test_constraints_refuse_bad_rows(fresh_database_url: str) -> None:
    apply_migrations(fresh_database_url)
    good = "INSERT INTO payment_splits (payment_hash, user_wallet_id, user_api_key_encrypted, total_amount, base_amount, tip_amount, expires_at) VALUES "
    bad_rows = [
        f"('{'a' * 64}', 'w', 'enc:v1:k:x', 11, 10, 2, now())",  # total != base + tip
        f"('{'b' * 64}', 'w', 'enc:v1:k:x', 9, 10, -1, now())",  # negative tip
        f"('{'c' * 63}', 'w', 'enc:v1:k:x', 10, 10, 0, now())",  # short hash
        f"('{'d' * 64}', 'w', 'plaintext-key', 10, 10, 0, now())",  # key not encrypted
        f"('{'e' * 64}', 'w', 'enc:v1:k:x', 0, 0, 0, now())",  # zero invoice
    ]
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        for row in bad_rows:
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(good + row)
        conn.execute(good + f"('{'f' * 64}', 'w', 'enc:v1:k:x', 10, 10, 0, now())")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO payment_legs (payment_hash, leg, destination_wallet_id, amount) VALUES ('{'f' * 64}', 'tip:0', 'w', 1)")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO payment_legs (payment_hash, leg, destination_wallet_id, amount, status) VALUES ('{'f' * 64}', 'base', 'w', 10, 'paying')")


def test_concurrent_instances_migrate_once(fresh_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: apply_migrations(fresh_database_url), range(4)))
    assert sorted(results, key=len) == [[], [], [], MIGRATIONS]
    applied = query(fresh_database_url, "SELECT migration_id FROM _yoyo_migration ORDER BY migration_id")
    assert applied == [(m,) for m in MIGRATIONS]


def test_urls_are_normalised() -> None:
    assert libpq_url("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert yoyo_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="postgresql"):
        libpq_url("mysql://u@h/db")
