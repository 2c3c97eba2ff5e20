"""Parse, validate and run one GraphQL request against the Blink schema, for either transport."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    subscribe,
    validate,
)

from tipsplit.sim.resolvers import resolve_field, resolve_subscription
from tipsplit.sim.schema import sim_schema
from tipsplit.sim.state import RequestContext


@dataclass(frozen=True)
class Request:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None

    @classmethod
    def from_json(cls, body: Any) -> "Request":
        """Read {query, variables, operationName}; raise ValueError on any other shape."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ValueError("the body must be a JSON object with a string `query`")
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise ValueError("`variables` must be a JSON object")
        operation_name = body.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise ValueError("`operationName` must be a string")
        return cls(body["query"], variables, operation_name)


class RequestRejected(Exception):
    """The document does not parse or does not validate against the schema: nothing ran."""

    def __init__(self, errors: list[GraphQLError], code: str) -> None:
        super().__init__(errors[0].message)
        self.errors = errors
        self.code = code

    def formatted(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for error in self.errors:
            item: dict[str, Any] = dict(error.formatted)
            item["extensions"] = {**item.get("extensions", {}), "code": self.code}
            out.append(item)
        return out


@lru_cache(maxsize=256)
def _valid_document(query: str) -> DocumentNode:
    """Parse and validate a query text once per process.

    Clients send the same few operation texts over and over, and parsing plus
    validating them was most of the simulator's CPU per request. The schema is
    fixed, so a text that validated once always does; execution only reads the
    document, so one cached tree can serve concurrent requests. Rejected texts
    raise and are therefore never cached.
    """
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise RequestRejected([exc], "GRAPHQL_PARSE_FAILED") from None
    errors = validate(sim_schema(), document)
    if errors:
        raise RequestRejected(list(errors), "GRAPHQL_VALIDATION_FAILED")
    return document


def prepare(request: Request) -> tuple[DocumentNode, OperationType, tuple[str, ...]]:
    """Parse and validate, and say which kind of operation will run and which root fields it asks for.

    Cached by query text and operation name, as the document is: the same few operations come again and again.
    """
    return _prepared(request.query, request.operation_name)


@lru_cache(maxsize=256)
def _prepared(query: str, operation_name: str | None) -> tuple[DocumentNode, OperationType, tuple[str, ...]]:
    document = _valid_document(query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1:
        message = "Unknown operation name" if operation_name else "Several operations: give operationName"
        raise RequestRejected([GraphQLError(message)], "BAD_USER_INPUT")
    fields = tuple(s.name.value for s in chosen[0].selection_set.selections if isinstance(s, FieldNode))
    return document, chosen[0].operation, fields


async def run(document: DocumentNode, request: Request, context: RequestContext) -> ExecutionResult:
    """Execute a query or mutation."""
    result = execute(
        sim_schema(), document, context_value=context, variable_values=request.variables,
        operation_name=request.operation_name, field_resolver=resolve_field,
    )
    if isinstance(result, ExecutionResult):
        return result
    return await result


async def run_subscription(
    document: DocumentNode, request: Request, context: RequestContext
) -> AsyncIterator[ExecutionResult] | ExecutionResult:
    """Start a subscription: a stream of results, or one result holding the errors that stopped it."""
    result = subscribe(
        sim_schema(), document, context_value=context, variable_values=request.variables,
        operation_name=request.operation_name, field_resolver=resolve_field,
        subscribe_field_resolver=resolve_subscription,
    )
    if isinstance(result, ExecutionResult) or isinstance(result, AsyncIterator):
        return result
    return await result
