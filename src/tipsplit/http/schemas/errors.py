"""The error body every API error shares (http/errors.py sends it), and its entries for a route's `responses=`."""

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """What went wrong, in words a person can act on."""

    error: str = Field(description="what is wrong, and what to do about it")
    field: str | None = Field(default=None, description="the request field at fault, when one is")
    retryAfter: int | None = Field(default=None, description="seconds to wait before trying again (429, some 503)")


class Problem(BaseModel):
    field: str = Field(description="dotted path of the invalid field; `body` for the body as a whole")
    message: str


class InvalidRequest(ErrorBody):
    """A request that is not valid: `error` and `field` say the first problem; `problems` lists each one the
    validation found (absent when the request was valid but cannot be carried out, e.g. an unknown recipient)."""

    field: str = Field(description="the first field at fault")
    problems: list[Problem] | None = None


class PaymentNotFound(ErrorBody):
    status: Literal["not_found"]


def error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    """One documented error answer of a route."""
    return {"model": model, "description": description}


INVALID = error("a field is missing or invalid: `field` names the first, `problems` lists each", InvalidRequest)
STORAGE_DOWN = error("PostgreSQL is unreachable; try again (Retry-After)")
OPERATOR_ONLY = error("the operator's: send `Authorization: Bearer <OPERATOR_TOKEN>` (WWW-Authenticate)")
TOO_MANY_SIGN_INS = error("too many wrong operator tokens from this address (Retry-After)")
