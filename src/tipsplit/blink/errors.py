"""What can go wrong when speaking to Blink, as exceptions the caller can act on.

The split that matters for money is between `BlinkUnavailable` (Blink never
acted on the request, so trying again is harmless) and `BlinkOutcomeUnknown`
(a payment was sent and its answer lost, so the money may have moved: the
caller must ask Blink for the invoice's status, never pay anew). Messages
name the operation and never contain the API key.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from tipsplit.blink.types import ApiErrorItem

# `extensions.code` / payload `code` values by which Blink refuses a key or a scope.
AUTH_CODES = frozenset(
    {"UNAUTHENTICATED", "NOT_AUTHENTICATED", "UNAUTHORIZED", "NOT_AUTHORIZED", "FORBIDDEN", "INVALID_AUTHORIZATION"}
)
NOT_FOUND_CODES = frozenset({"NOT_FOUND"})
# Blink's code for a refused invoice creation once an account's invoice budget is spent (or it is blocked).
RATE_LIMITED_CODE = "TOO_MANY_REQUEST"
# Blink's message for a repeated invoice externalId (graphql/error-map.ts: DuplicateLedgerExternalIdError).
DUPLICATE_EXTERNAL_ID_MESSAGE = "External id for invoice or transaction already exists"


class BlinkError(Exception):
    """Base of every error raised while speaking to Blink."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"Blink {operation}: {detail}")


class BlinkAuthError(BlinkError):
    """The API key is missing, invalid, or lacks the scope the operation needs."""


class BlinkNotFound(BlinkError):
    """Blink does not know the thing asked about (a username, an invoice)."""


class BlinkApiError(BlinkError):
    """Blink executed the operation and refused it in the payload's `errors` list."""

    def __init__(self, operation: str, errors: Sequence[ApiErrorItem]) -> None:
        self.errors = tuple(errors)
        super().__init__(operation, "; ".join(str(e) for e in self.errors) or "refused without a reason")


class BlinkDuplicateExternalId(BlinkApiError):
    """An invoice with this `externalId` already exists on the recipient's account.

    Blink keeps externalIds unique per account, so an invoice creation whose
    answer was lost cannot be repeated into a second invoice: the caller learns
    that the first one exists, although not its payment request.
    """


class BlinkRateLimited(BlinkError):
    """Blink refused an invoice creation: the account behind it spent its invoice budget and is blocked a while.

    Nothing was created. Not retried by the client: retrying only meets the same block.
    """


class BlinkGraphQLError(BlinkError):
    """The response carried top-level GraphQL errors (bad document, resolver failure)."""

    def __init__(self, operation: str, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = tuple(errors)
        self.codes = tuple(_graphql_error_code(e) for e in self.errors)
        messages = "; ".join(
            f"{code}: {e.get('message')}" if code else str(e.get("message"))
            for e, code in zip(self.errors, self.codes)
        )
        super().__init__(operation, messages or "GraphQL error without a message")


class BlinkUnavailable(BlinkError):
    """Blink was unreachable, overloaded or silent, and the request moves no money: trying again is safe.

    For a payment send this is only raised when the request never left
    (no connection, rate limited), so the money certainly did not move.
    """


class BlinkOutcomeUnknown(BlinkError):
    """A payment send's answer was lost, so the money may have moved.

    Resolve it by asking Blink for the wallet's own sends to the invoice and its
    status; re-sending the same invoice once none is pending is harmless, paying
    any other invoice for it is not.
    """


def _graphql_error_code(error: Mapping[str, Any]) -> str | None:
    extensions = error.get("extensions") or {}
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return str(code) if code is not None else None
