"""The `externalId` a leg's destination invoice carries.

Blink keeps an externalId unique per account, so deriving it from the
payment, the leg and how many invoices the leg has had means that repeating a
creation (after a crash or a lost answer) can never make a second invoice
unnoticed. Blink accepts 1-100 characters of `[a-z0-9_-]`.
"""

import re

EXTERNAL_ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,100}$")


def leg_external_id(payment_hash: str, leg: str, generation: int) -> str:
    """`ts-<payment hash>-<leg>-<generation>`, e.g. `ts-ab12…-tip2-0`."""
    if generation < 0:
        raise ValueError("an invoice generation is counted from 0")
    external_id = f"ts-{payment_hash.lower()}-{leg.replace(':', '')}-{generation}"
    if not EXTERNAL_ID_PATTERN.match(external_id):
        raise ValueError(f"not a valid Blink externalId: {external_id!r}")
    return external_id
