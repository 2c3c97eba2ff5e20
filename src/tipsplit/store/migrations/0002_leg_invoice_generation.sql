-- depends: 0001_initial
-- How many destination invoices a leg has had: part of each invoice's deterministic externalId.
ALTER TABLE payment_legs ADD COLUMN invoice_generation INT NOT NULL DEFAULT 0;
ALTER TABLE payment_legs ADD CONSTRAINT payment_legs_generation_non_negative CHECK (invoice_generation >= 0);
