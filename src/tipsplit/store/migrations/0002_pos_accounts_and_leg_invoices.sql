-- depends: 0001_initial
-- Which POS account received a payment (its legs are paid from that account; NULL: the first configured one).
ALTER TABLE payment_splits ADD COLUMN pos_wallet_id VARCHAR(100);
-- How many destination invoices a leg has had: part of each invoice's deterministic externalId.
ALTER TABLE payment_legs ADD COLUMN invoice_generation INT NOT NULL DEFAULT 0;
ALTER TABLE payment_legs ADD CONSTRAINT payment_legs_generation_non_negative CHECK (invoice_generation >= 0);
-- What a leg that is neither failed nor paying is waiting for (e.g. its destination's invoice budget).
ALTER TABLE payment_legs ADD COLUMN waiting_for TEXT;
-- What the leg's destination wallet holds: sats (BTC) or cents (USD, credited at Blink's price when paid).
ALTER TABLE payment_legs ADD COLUMN destination_currency VARCHAR(3) NOT NULL DEFAULT 'BTC';
ALTER TABLE payment_legs ADD CONSTRAINT payment_legs_destination_currency_valid
    CHECK (destination_currency IN ('BTC', 'USD'));
