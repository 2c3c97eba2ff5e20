-- depends: 0002_pos_accounts_and_leg_invoices
-- A till: a device link the owner hands out. The link's token is stored only as its SHA-256; the merchant's
-- Blink key sealed (AES-256-GCM, as everywhere); wallet, currency, tip presets and team are the server's word.
CREATE TABLE tills (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash CHAR(64) NOT NULL UNIQUE,
    api_key_encrypted TEXT NOT NULL,
    merchant_username TEXT,
    wallet_id VARCHAR(100) NOT NULL,
    display_currency VARCHAR(4) NOT NULL DEFAULT 'BTC',
    tip_presets NUMERIC[] NOT NULL,
    team JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ,
    CONSTRAINT tills_name_length CHECK (length(name) BETWEEN 1 AND 60),
    CONSTRAINT tills_token_hash_hex CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT tills_presets_count CHECK (cardinality(tip_presets) BETWEEN 1 AND 6)
);
-- Which till rang up a sale, and whether its cashier cancelled it (a cancelled sale that is paid anyway is
-- still forwarded; the dashboard flags it).
CREATE TABLE till_sales (
    payment_hash VARCHAR(64) PRIMARY KEY,
    till_id BIGINT NOT NULL REFERENCES tills (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at TIMESTAMPTZ,
    CONSTRAINT till_sales_hash_hex CHECK (payment_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX till_sales_till_created ON till_sales (till_id, created_at DESC);
CREATE INDEX till_sales_cancelled ON till_sales (cancelled_at) WHERE cancelled_at IS NOT NULL;
