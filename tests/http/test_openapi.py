"""The API documents what it answers, and answers only what it documents.

Every JSON route under /api names the fields of its success body and gives each error it documents a body
schema; a field the documented answer does not have never leaves, even if a cached view carries one.
"""

import json
from typing import Any

import httpx
import pytest

from tests.services.conftest import World
from tipsplit.runtime.assembly import Runtime

METHODS = ("get", "post", "put", "patch", "delete")


async def _openapi(world: World) -> dict[str, Any]:
    async with world.http() as http:
        response = await http.get("/openapi.json", headers=world.operator)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fields(doc: dict[str, Any], answer: dict[str, Any]) -> set[str]:
    """The fields an answer's body documents: a JSON body's, or the JSON data of an event stream's items."""
    fields: set[str] = set()
    for content in answer.get("content", {}).values():
        fields |= set(_resolved(doc, content.get("schema", {})).get("properties", {}))
        data = content.get("itemSchema", {}).get("properties", {}).get("data", {})
        fields |= set(_resolved(doc, data.get("contentSchema", {})).get("properties", {}))
    return fields


def _refs(node: Any) -> set[str]:
    """Every `$ref` anywhere under `node`."""
    if isinstance(node, list):
        return {ref for value in node for ref in _refs(value)}
    if not isinstance(node, dict):
        return set()
    own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
    return own | {ref for value in node.values() for ref in _refs(value)}


def _api_operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in doc["paths"].items() if path.startswith("/api/")
        for method, operation in item.items() if method in METHODS
    ]


async def test_every_api_route_documents_its_answer_and_its_errors(world: World) -> None:
    doc = await _openapi(world)
    operations = _api_operations(doc)
    assert len(operations) >= 7, [name for name, _ in operations]
    undocumented = [
        name for name, operation in operations
        if not any(code.startswith("2") and _fields(doc, answer) for code, answer in operation["responses"].items())
    ]
    assert not undocumented, f"no 2xx body schema naming its fields: {undocumented}"
    shapeless = [
        f"{name} {code}" for name, operation in operations
        for code, answer in operation["responses"].items() if code[0] in "45" and not _fields(doc, answer)
    ]
    assert not shapeless, f"errors documented without a body schema: {shapeless}"
    never_sent = [name for name, operation in operations if "422" in operation["responses"]]
    assert not never_sent, f"422 documented, but invalid requests are answered 400: {never_sent}"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    names = {f"#/components/schemas/{name}" for name in doc["components"]["schemas"]}
    assert _refs(doc) <= names, f"references to schemas the document lacks: {_refs(doc) - names}"


async def test_the_documented_errors_are_the_errors_sent(world: World) -> None:
    doc = await _openapi(world)
    create = doc["paths"]["/api/blink/create-invoice"]["post"]["responses"]
    assert {"200", "400", "401", "403", "429", "502", "503"} <= set(create)
    assert {"error", "field", "problems"} <= _fields(doc, create["400"])
    async with world.http() as http:
        refused = await http.post("/api/blink/create-invoice", json={"apiKey": "k"})
    assert refused.status_code == 400 and set(refused.json()) <= _fields(doc, create["400"])
    forward = doc["paths"]["/api/blink/forward-with-tips"]["post"]["responses"]
    assert {"200", "202", "404", "409", "410", "429", "503"} <= set(forward)


@pytest.mark.settings(poll_interval_seconds=3600, reconcile_interval_seconds=3600)
async def test_a_field_the_answer_does_not_declare_never_leaves(world: World) -> None:
    """A view cached in Redis by another writer (an older instance, a bug) carries wallet ids and Blink's words:
    the status answer and its stream send the declared fields only."""
    rt: Runtime = world.service.app.state.runtime
    assert rt.store.hot is not None
    async with world.http() as http:
        sale = await world.create_invoice(http, baseAmount=1_000, tipPercent=10,
                                          tipRecipients=[{"username": "alice", "share": 100}])
        ph = sale["paymentHash"]
        clean = await world.status(http, ph)
        cached, generation = await rt.store.hot.get_live_view(ph)
        assert cached is not None, "the first poll caches the view"
        tampered = json.loads(cached)
        tampered["userWalletId"] = world.merchant.wallet_id
        tampered["legs"][0]["destinationWalletId"] = world.merchant.wallet_id
        tampered["legs"][0]["lastError"] = "amount exceeds balance '12'"
        tampered["events"][0]["data"]["walletId"] = world.merchant.wallet_id
        assert await rt.store.hot.put_live_view(ph, generation, json.dumps(tampered), 60_000)
        answer = await http.get(f"/api/payment-status/{ph}")
        async with http.stream("GET", f"/api/payment-status/{ph}/events") as stream:
            first = await _first_event(stream)
    assert answer.status_code == 200
    for text in (answer.text, first):
        assert world.merchant.wallet_id not in text and "exceeds balance" not in text, text
    assert answer.json() == clean
    assert json.loads(first) == {key: value for key, value in clean.items() if key != "events"}


async def _first_event(stream: httpx.Response) -> str:
    async for line in stream.aiter_lines():
        if line.startswith("data:"):
            return line[5:]
    raise AssertionError("the stream ended without an event")
