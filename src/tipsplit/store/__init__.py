"""Where payments are kept: Redis for hot state, PostgreSQL for the record, files as a fallback."""
