"""Every Query field, and every field reachable from `me`, either works or says the simulator does not support it.

The walk queries one field at a time (with its scalar children) along every path from
the root, with arguments that make sense for a funded account that has sent, received,
invoiced and converted. A field may answer data, or a NOT_IMPLEMENTED error naming
itself; it may never answer null where the schema says non-null, nor null without an
error unless null is what Blink answers for this account (LEGITIMATELY_NULL).
"""

from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_non_null_type,
)

from tests.sim import documents as doc
from tests.sim.conftest import Account, Sim
from tipsplit.sim.schema import sim_schema

LEGITIMATELY_NULL = {
    "User.email", "User.phone", "Transaction.externalId", "Transaction.memo", "SettlementViaLn.paymentSecret",
    "SettlementViaLn.preImage", "SettlementViaIntraLedger.preImage", "InitiationViaLn.paymentRequest",
    "Quiz.notBefore", "Email.address", "Email.verified", "PageInfo.startCursor", "PageInfo.endCursor",
    "SettlementViaIntraLedger.counterPartyUsername", "SettlementViaIntraLedger.counterPartyWalletId",
    "InitiationViaIntraLedger.counterPartyUsername", "InitiationViaIntraLedger.counterPartyWalletId",
    "PriceOfOneSettlementMinorUnitInDisplayMinorUnit.formattedAmount", "PriceOfOneSatInMinorUnit.formattedAmount",
    "PriceOfOneUsdCentInMinorUnit.formattedAmount",
}
MAX_DEPTH = 8
ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


@dataclass
class World:
    account: Account
    paid_hash: str
    paid_request: str
    usd_paid_hash: str
    btc_tx_id: str
    usd_tx_id: str


@dataclass(frozen=True)
class Step:
    """One level of a path: a field with its argument text, or an inline fragment on a type."""

    text: str
    type_name: str


async def _world(sim: Sim) -> World:
    """An account that received over Lightning, paid an invoice, sent to its USD wallet and was paid in USD."""
    shop, payer = await sim.account(balance=50_000), await sim.account(balance=50_000)
    received = await sim.invoice(shop.btc_wallet_id, 1_000, "latte")
    await sim.http.post("/sim/pay", json={"paymentRequest": received["paymentRequest"]})
    other = await sim.account()
    sent = await sim.invoice(other.btc_wallet_id, 300, "tip")
    await sim.send(shop, sent["paymentRequest"])
    await sim.data(doc.INTRALEDGER_PAYMENT_SEND, {"input": {
        "walletId": shop.btc_wallet_id, "recipientWalletId": shop.usd_wallet_id, "amount": 2_000}}, shop.api_key)
    usd = await sim.data(doc.LN_USD_INVOICE_CREATE_ON_BEHALF, {"input": {"recipientWalletId": shop.usd_wallet_id,
                                                                        "amount": 150}})
    usd_invoice = usd["lnUsdInvoiceCreateOnBehalfOfRecipient"]["invoice"]
    await sim.send(payer, usd_invoice["paymentRequest"])
    btc = (await sim.http.get(f"/sim/wallets/{shop.btc_wallet_id}")).json()["transactions"]
    usd_txs = (await sim.http.get(f"/sim/wallets/{shop.usd_wallet_id}")).json()["transactions"]
    return World(shop, received["paymentHash"], received["paymentRequest"], usd_invoice["paymentHash"], btc[0]["id"],
                 usd_txs[0]["id"])


def _literal(type_: GraphQLInputType, world: World, parent: str, name: str) -> str | None:
    """A sensible literal for an argument or input field, or None to leave an optional one out."""
    if isinstance(type_, GraphQLNonNull):
        return _literal(type_.of_type, world, parent, name) or _fallback(type_.of_type, world, parent, name)
    if isinstance(type_, GraphQLList):
        inner = _literal(type_.of_type, world, parent, name)
        return f"[{inner}]" if inner is not None else None
    if isinstance(type_, GraphQLInputObjectType):
        fields = [(n, _literal(f.type, world, parent, n)) for n, f in type_.fields.items()]
        return "{" + ", ".join(f"{n}: {v}" for n, v in fields if v is not None) + "}"
    named = type_.name
    chosen = {
        "WalletId": f'"{world.account.usd_wallet_id if parent == "UsdWallet" else world.account.btc_wallet_id}"',
        "PaymentHash": f'"{world.usd_paid_hash if parent == "UsdWallet" else world.paid_hash}"', "LnPaymentRequest": f'"{world.paid_request}"',
        "Username": f'"{world.account.username}"', "OnChainAddress": f'"{ADDRESS}"', "DisplayCurrency": '"USD"',
        "SatAmount": "1000", "CentAmount": "100",
    }
    if named in chosen:
        return chosen[named]
    if named == "ID" and name == "transactionId":
        return f'"{world.usd_tx_id if parent == "UsdWallet" else world.btc_tx_id}"'
    if named == "Int" and name in ("first", "last"):
        return "5"
    return None


def _fallback(type_: GraphQLInputType, world: World, parent: str, name: str) -> str:
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    defaults = {"Float": "1000", "Int": "1", "String": '"x"', "Boolean": "false", "ID": '"x"'}
    assert isinstance(type_, GraphQLScalarType), type_
    return defaults.get(type_.name, '"x"')


def _args(field: GraphQLField, world: World, parent: str) -> str:
    given = [(n, _literal(a.type, world, parent, n)) for n, a in field.args.items() if _wanted(a, n)]
    text = ", ".join(f"{n}: {v}" for n, v in given if v is not None)
    return f"({text})" if text else ""


def _wanted(argument: GraphQLArgument, name: str) -> bool:
    return is_non_null_type(argument.type) or name in ("first",)


def _leaves(type_: GraphQLNamedType) -> str:
    """The scalar children of a type (and __typename), the selection each probe asks for."""
    if is_leaf_type(type_):
        return ""
    if is_abstract_type(type_):
        return "__typename"
    assert isinstance(type_, GraphQLObjectType)
    names = [n for n, f in type_.fields.items() if is_leaf_type(get_named_type(f.type)) and not _required_args(f)]
    return " ".join(["__typename", *names])


def _required_args(field: GraphQLField) -> bool:
    return any(is_non_null_type(a.type) for a in field.args.values())


def _document(path: list[Step], leaf: str) -> str:
    text = leaf
    for index, step in reversed(list(enumerate(path))):
        if not text:
            text = step.text
        elif step.text.startswith("...") or index == len(path) - 1:
            text = f"{step.text} {{ {text} }}"
        else:
            text = f"{step.text} {{ __typename {text} }}"
    return "query Walk { " + text + " }"


def _value_at(data: Any, path: list[Step]) -> list[Any]:
    """The values at the end of a path: lists fan out, inline fragments narrow by __typename, and a null
    on the way (judged where it was answered) or an empty list leaves nothing."""
    values = [data]
    for step in path:
        next_values: list[Any] = []
        for value in values:
            if value is None:
                continue
            if step.text.startswith("..."):
                if value.get("__typename", step.type_name) == step.type_name:
                    next_values.append(value)
                continue
            found = value.get(step.text.split("(")[0].split(" ")[0])
            next_values.extend(found if isinstance(found, list) else [found])
        values = next_values
    return values


async def test_every_reachable_field_works_or_says_it_is_unsupported(sim: Sim) -> None:
    world = await _world(sim)
    schema = sim_schema()
    query = schema.query_type
    assert query is not None
    problems: list[str] = []
    probed: set[str] = set()
    todo: list[tuple[list[Step], GraphQLObjectType]] = [([], query)]
    while todo:
        path, parent = todo.pop()
        for name, field in parent.fields.items():
            qualified = f"{parent.name}.{name}"
            if qualified in probed or len(path) >= MAX_DEPTH or (parent is query and path):
                continue
            probed.add(qualified)
            named = get_named_type(field.type)
            step = Step(name + _args(field, world, parent.name), named.name)
            body = (await sim.gql(_document(path + [step], _leaves(named)), key=world.account.api_key)).json()
            verdict = _judge(qualified, body, path + [step])
            if verdict is None:
                probed.discard(qualified)
                continue
            problems += verdict
            if (parent is query and name != "me") or body.get("errors"):
                continue
            targets = list(schema.get_possible_types(named)) if is_abstract_type(named) else [named]
            for target in targets:
                if isinstance(target, GraphQLObjectType):
                    narrowed = [Step(f"... on {target.name}", target.name)] if is_abstract_type(named) else []
                    todo.append((path + [step] + narrowed, target))
    assert problems == [], "\n".join(problems)
    assert {"ConsumerAccount.csvTransactions", "BTCWallet.transactionsByPaymentHash", "UsdWallet.invoices",
            "Transaction.settlementVia", "User.defaultAccount"} <= probed


def _judge(qualified: str, body: dict[str, Any], path: list[Step]) -> list[str] | None:
    """What is wrong with one probe's answer; None when this path reached no value of the field."""
    problems = []
    errors = body.get("errors", [])
    for error in errors:
        if error["message"].startswith("Cannot return null"):
            problems.append(f"{qualified}: null for a non-null field: {error['message']}")
        elif error.get("extensions", {}).get("code") != "NOT_IMPLEMENTED":
            problems.append(f"{qualified}: {error.get('extensions', {}).get('code')}: {error['message']}")
        elif error["message"] != f"The simulator does not support {qualified}":
            problems.append(f"{qualified}: an unsupported field below it: {error['message']}")
    if not errors:
        values = _value_at(body.get("data"), path)
        if not values:
            return None
        if any(v is None for v in values) and qualified not in LEGITIMATELY_NULL:
            problems.append(f"{qualified}: null without an error")
    return problems


async def test_unsupported_mutations_say_so(sim: Sim) -> None:
    account = await sim.account(balance=100)
    body = (await sim.gql('mutation { userLogout(input: {deviceToken: "x"}) { success errors { message } } }',
                          key=account.api_key)).json()
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("The simulator does not support Mutation.userLogout", "NOT_IMPLEMENTED")]
