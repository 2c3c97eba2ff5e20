-- The seed's four tables as valid PostgreSQL, plus what exactly-once needs:
-- claims on payment_splits, one row per outgoing leg, and per-payment tip shares.

CREATE TABLE payment_splits (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) NOT NULL UNIQUE,

    user_wallet_id VARCHAR(100) NOT NULL,
    user_api_key_encrypted TEXT NOT NULL,
    username VARCHAR(50),

    total_amount BIGINT NOT NULL,
    base_amount BIGINT NOT NULL,
    tip_amount BIGINT NOT NULL,
    tip_percent NUMERIC(7, 4),

    display_currency VARCHAR(10) NOT NULL DEFAULT 'BTC',
    base_amount_display NUMERIC(30, 8),
    tip_amount_display NUMERIC(30, 8),

    tip_recipient VARCHAR(50),

    status VARCHAR(20) NOT NULL DEFAULT 'pending',

    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at TIMESTAMPTZ,
    processed_at TIMESTAMPTZ,

    user_payment_hash VARCHAR(64),
    tip_payment_hash VARCHAR(64),
    error_message TEXT,

    memo TEXT,
    invoice_satoshis BIGINT,
    payment_request TEXT,
    expires_at TIMESTAMPTZ NOT NULL,

    claim_owner TEXT,
    claim_expires_at TIMESTAMPTZ,
    settle_attempts INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT payment_splits_hash_hex CHECK (payment_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT payment_splits_key_encrypted CHECK (user_api_key_encrypted LIKE 'enc:%'),
    CONSTRAINT payment_splits_status_valid
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'expired')),
    CONSTRAINT payment_splits_amounts_non_negative
        CHECK (base_amount >= 0 AND tip_amount >= 0 AND total_amount >= 0),
    CONSTRAINT payment_splits_total_is_base_plus_tip CHECK (total_amount = base_amount + tip_amount),
    CONSTRAINT payment_splits_total_positive CHECK (total_amount > 0),
    CONSTRAINT payment_splits_invoice_matches_total
        CHECK (invoice_satoshis IS NULL OR invoice_satoshis = total_amount),
    CONSTRAINT payment_splits_tip_percent_range CHECK (tip_percent IS NULL OR tip_percent BETWEEN 0 AND 100),
    CONSTRAINT payment_splits_attempts_non_negative CHECK (settle_attempts >= 0),
    CONSTRAINT payment_splits_claim_complete
        CHECK (status <> 'processing' OR (claim_owner IS NOT NULL AND claim_expires_at IS NOT NULL))
);

CREATE INDEX idx_payment_splits_status ON payment_splits (status);
CREATE INDEX idx_payment_splits_active ON payment_splits (created_at)
    WHERE status IN ('pending', 'processing');
CREATE INDEX idx_payment_splits_retry ON payment_splits (next_attempt_at)
    WHERE status = 'failed';
CREATE INDEX idx_payment_splits_created_at ON payment_splits (created_at);
CREATE INDEX idx_payment_splits_user_wallet ON payment_splits (user_wallet_id);
CREATE INDEX idx_payment_splits_tip_recipient ON payment_splits (tip_recipient);
CREATE INDEX idx_payment_splits_expires_at ON payment_splits (expires_at);

CREATE TABLE payment_tip_recipients (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) NOT NULL REFERENCES payment_splits (payment_hash),
    position INT NOT NULL,
    username VARCHAR(50) NOT NULL,
    share NUMERIC(7, 4) NOT NULL,
    CONSTRAINT payment_tip_recipients_position_positive CHECK (position >= 1),
    CONSTRAINT payment_tip_recipients_share_range CHECK (share > 0 AND share <= 100),
    CONSTRAINT payment_tip_recipients_unique_position UNIQUE (payment_hash, position)
);

CREATE INDEX idx_payment_tip_recipients_username ON payment_tip_recipients (username);

CREATE TABLE payment_legs (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) NOT NULL REFERENCES payment_splits (payment_hash),
    leg TEXT NOT NULL,
    destination_username VARCHAR(50),
    destination_wallet_id VARCHAR(100),
    amount BIGINT NOT NULL,
    share NUMERIC(7, 4),
    memo TEXT,
    dest_payment_hash VARCHAR(64),
    dest_payment_request TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    attempts INT NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    CONSTRAINT payment_legs_leg_name CHECK (leg = 'base' OR leg ~ '^tip:[1-9][0-9]*$'),
    CONSTRAINT payment_legs_amount_non_negative CHECK (amount >= 0),
    CONSTRAINT payment_legs_zero_is_skipped CHECK (amount > 0 OR status = 'skipped'),
    CONSTRAINT payment_legs_status_valid
        CHECK (status IN ('pending', 'invoiced', 'paying', 'succeeded', 'failed', 'skipped')),
    CONSTRAINT payment_legs_paid_only_by_invoice
        CHECK (status NOT IN ('invoiced', 'paying', 'succeeded') OR dest_payment_hash IS NOT NULL),
    CONSTRAINT payment_legs_dest_hash_hex CHECK (dest_payment_hash IS NULL OR dest_payment_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT payment_legs_has_destination
        CHECK (destination_username IS NOT NULL OR destination_wallet_id IS NOT NULL),
    CONSTRAINT payment_legs_attempts_non_negative CHECK (attempts >= 0),
    CONSTRAINT payment_legs_unique_leg UNIQUE (payment_hash, leg)
);

CREATE UNIQUE INDEX idx_payment_legs_dest_hash ON payment_legs (dest_payment_hash)
    WHERE dest_payment_hash IS NOT NULL;
CREATE INDEX idx_payment_legs_open ON payment_legs (next_attempt_at)
    WHERE status IN ('pending', 'invoiced', 'paying', 'failed');

CREATE TABLE payment_events (
    id BIGSERIAL PRIMARY KEY,
    payment_hash VARCHAR(64) NOT NULL REFERENCES payment_splits (payment_hash),
    event_type VARCHAR(50) NOT NULL,
    event_data JSONB NOT NULL DEFAULT '{}'::jsonb,
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_payment_events_payment ON payment_events (payment_hash, id);
CREATE INDEX idx_payment_events_type ON payment_events (event_type);
CREATE INDEX idx_payment_events_timestamp ON payment_events ("timestamp");

CREATE TABLE tip_recipients_stats (
    id BIGSERIAL PRIMARY KEY,
    recipient_username VARCHAR(50) NOT NULL UNIQUE,
    total_tips_received BIGINT NOT NULL DEFAULT 0,
    total_tips_count INTEGER NOT NULL DEFAULT 0,
    average_tip_amount NUMERIC(20, 2),
    first_tip_received_at TIMESTAMPTZ,
    last_tip_received_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tip_recipients_stats_non_negative CHECK (total_tips_received >= 0 AND total_tips_count >= 0)
);

CREATE TABLE system_metrics (
    id BIGSERIAL PRIMARY KEY,
    metric_name VARCHAR(100) NOT NULL,
    metric_value NUMERIC(20, 4),
    metric_unit VARCHAR(20),
    "timestamp" TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata JSONB
);

CREATE INDEX idx_system_metrics_name ON system_metrics (metric_name, "timestamp");
CREATE INDEX idx_system_metrics_timestamp ON system_metrics ("timestamp");
