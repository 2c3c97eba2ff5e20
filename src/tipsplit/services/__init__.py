"""Use cases: invoicing, settlement and its detection paths, POS accounts, tills, key rotation, the legacy import."""
