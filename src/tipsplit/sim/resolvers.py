"""Resolvers for the Blink schema's fields, dispatched by (parent type, field name).

The schema itself is `tipsplit.blink.schema.blink_schema()`, untouched: graphql-core
accepts a `field_resolver` per execution, so the simulator binds its behaviour
there instead of mutating the shared, cached schema object the client also uses.
Fields without an entry here are read from the parent value (a dict from views).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, default_field_resolver

from tipsplit.sim.events import EventStream
from tipsplit.sim.faults import FaultPlan, Target
from tipsplit.sim.ledger import (
    Account, ApiKey, Direction, InvoiceStatus, Ledger, LedgerError, LedgerEvent, NoRoute, NotFound, Scope,
    SendResult,
)
from tipsplit.sim.prices import UnknownCurrency
from tipsplit.sim.state import RequestContext, SimState
from tipsplit.sim import views

Resolver = Callable[..., Any]
WALLET_TYPES = ("BTCWallet", "UsdWallet")
RESOLVERS: dict[tuple[str, str], Resolver] = {}
SUBSCRIBERS: dict[str, Resolver] = {}


def resolves(type_names: str | tuple[str, ...], *field_names: str) -> Callable[[Resolver], Resolver]:
    types = (type_names,) if isinstance(type_names, str) else type_names

    def register(fn: Resolver) -> Resolver:
        for type_name in types:
            for name in field_names:
                RESOLVERS[(type_name, name)] = fn
        return fn

    return register


def subscribes(*field_names: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        for name in field_names:
            SUBSCRIBERS[name] = fn
        return fn

    return register


def resolve_field(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """The execution's field_resolver: our resolver if one is registered, else the parent's value."""
    resolver = RESOLVERS.get((info.parent_type.name, info.field_name))
    if resolver is None:
        return default_field_resolver(source, info, **args)
    return resolver(source, info, **args)


def resolve_subscription(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """The execution's subscribe_field_resolver: returns the event stream for a Subscription field."""
    subscriber = SUBSCRIBERS.get(info.field_name)
    if subscriber is None:
        raise GraphQLError(f"The simulator does not serve subscription {info.field_name}",
                           extensions={"code": "NOT_IMPLEMENTED"})
    return subscriber(source, info, **args)


# ---- helpers -------------------------------------------------------------------


def ctx(info: GraphQLResolveInfo) -> RequestContext:
    context: RequestContext = info.context
    return context


def gql_error(error: LedgerError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code})


def require(info: GraphQLResolveInfo, scope: Scope) -> ApiKey:
    """Blink refuses anonymous callers and keys without the scope an operation needs."""
    key = ctx(info).api_key
    if key is None:
        raise GraphQLError("Not authorized", extensions={"code": "UNAUTHENTICATED"})
    if scope not in key.scopes:
        raise GraphQLError(f"Not authorized: this API key lacks the {scope.value} scope",
                           extensions={"code": "FORBIDDEN"})
    return key


def account_target(account: Account) -> Target:
    return Target(frozenset(account.wallet_ids), account.username)


def wallet_target(info: GraphQLResolveInfo, wallet_id: str) -> Target:
    ledger = ctx(info).sim.ledger
    try:
        return account_target(ledger.account(ledger.wallet(wallet_id).account_id))
    except NotFound:
        return Target(frozenset({wallet_id}))


async def gate(info: GraphQLResolveInfo, target: Target = Target()) -> FaultPlan:
    """Apply the configured faults for this root field before it does anything."""
    context = ctx(info)
    plan = context.sim.faults.plan(info.field_name, target)
    if plan.latency_ms:
        await asyncio.sleep(plan.latency_ms / 1000)
    if plan.error_status is not None:
        context.abort_status = plan.error_status
        raise GraphQLError("Simulated upstream failure", extensions={"code": "INTERNAL_SERVER_ERROR"})
    if plan.lose_answer:
        context.lose_answer_delay_ms = plan.lose_answer_delay_ms
    return plan


def owned_wallet(info: GraphQLResolveInfo, key: ApiKey, wallet_id: str) -> None:
    ledger = ctx(info).sim.ledger
    try:
        wallet = ledger.wallet(wallet_id)
    except NotFound:
        wallet = None
    if wallet is None or wallet.account_id != key.account_id:
        raise LedgerError("Invalid walletId for account.")


# ---- Query -------------------------------------------------------------------


@resolves("Query", "me")
async def me(_: Any, info: GraphQLResolveInfo) -> views.View:
    key = require(info, Scope.READ)
    account = ctx(info).sim.ledger.account(key.account_id)
    await gate(info, account_target(account))
    return views.user_view(account)


@resolves("Query", "authorization")
async def authorization(_: Any, info: GraphQLResolveInfo) -> views.View:
    key = require(info, Scope.READ)
    await gate(info, account_target(ctx(info).sim.ledger.account(key.account_id)))
    return {"scopes": sorted(s.value for s in key.scopes)}


@resolves("Query", "accountDefaultWallet")
async def account_default_wallet(
    _: Any, info: GraphQLResolveInfo, username: str, walletCurrency: str | None = None
) -> views.View:
    ledger = ctx(info).sim.ledger
    await gate(info, Target(username=username))
    try:
        account = ledger.account_by_username(username)
    except NotFound as exc:
        raise gql_error(exc) from None
    if walletCurrency is None:
        return views.public_wallet_view(account.default_wallet_id, account.default_currency)
    if walletCurrency == "USD":
        return views.public_wallet_view(account.usd_wallet_id, ledger.wallet(account.usd_wallet_id).currency)
    return views.public_wallet_view(account.btc_wallet_id, ledger.wallet(account.btc_wallet_id).currency)


def _invoice_by(info: GraphQLResolveInfo, payment_hash: str | None, payment_request: str | None) -> Any:
    ledger = ctx(info).sim.ledger
    try:
        if payment_hash is not None:
            return ledger.invoice_by_hash(payment_hash)
        return ledger.invoice_by_request(payment_request or "")
    except LedgerError as exc:
        raise gql_error(exc) from None


@resolves("Query", "lnInvoicePaymentStatusByHash", "lnInvoicePaymentStatusByPaymentRequest", "lnInvoicePaymentStatus")
async def payment_status(_: Any, info: GraphQLResolveInfo, input: dict[str, str]) -> views.View:
    invoice = _invoice_by(info, input.get("paymentHash"), input.get("paymentRequest"))
    await gate(info, wallet_target(info, invoice.wallet_id))
    return views.payment_status_view(invoice, ctx(info).sim.ledger)


@resolves("Query", "realtimePrice")
async def realtime_price(_: Any, info: GraphQLResolveInfo, currency: str = "USD") -> views.View:
    await gate(info)
    sim = ctx(info).sim
    try:
        return views.realtime_price_view(currency, sim.prices, sim.clock.now())
    except UnknownCurrency:
        raise GraphQLError(f"Unsupported display currency {currency}", extensions={"code": "INVALID_INPUT"}) from None


@resolves("Query", "currencyList")
async def currency_list(_: Any, info: GraphQLResolveInfo) -> list[views.View]:
    await gate(info)
    prices = ctx(info).sim.prices
    return [views.currency_view(c.code, prices) for c in prices.currencies()]


# ---- User, Account, Wallet -----------------------------------------------------


@resolves("User", "defaultAccount")
def default_account(user: views.View, info: GraphQLResolveInfo) -> views.View:
    return views.account_view(ctx(info).sim.ledger.account(user["_account_id"]))


@resolves("ConsumerAccount", "wallets")
def account_wallets(account: views.View, info: GraphQLResolveInfo) -> list[views.View]:
    ledger = ctx(info).sim.ledger
    return [views.wallet_view(ledger.wallet(w)) for w in ledger.account(account["id"]).wallet_ids]


@resolves("ConsumerAccount", "walletById")
def account_wallet_by_id(account: views.View, info: GraphQLResolveInfo, walletId: str) -> views.View:
    ledger = ctx(info).sim.ledger
    if walletId not in ledger.account(account["id"]).wallet_ids:
        raise GraphQLError("Invalid walletId for account.", extensions={"code": "NOT_FOUND"})
    return views.wallet_view(ledger.wallet(walletId))


@resolves("ConsumerAccount", "realtimePrice")
def account_realtime_price(account: views.View, info: GraphQLResolveInfo) -> views.View:
    sim = ctx(info).sim
    return views.realtime_price_view(account["displayCurrency"], sim.prices, sim.clock.now())


def _tx_views(info: GraphQLResolveInfo, wallet_ids: list[str]) -> list[views.View]:
    sim = ctx(info).sim
    txs = [tx for w in wallet_ids for tx in sim.ledger.transactions(w)]
    txs.sort(key=lambda t: t.created_at, reverse=True)
    return [views.transaction_view(tx, sim.prices, _display_currency(info, tx.wallet_id)) for tx in txs]


def _display_currency(info: GraphQLResolveInfo, wallet_id: str) -> str:
    ledger = ctx(info).sim.ledger
    return ledger.account(ledger.wallet(wallet_id).account_id).display_currency


@resolves("ConsumerAccount", "transactions")
def account_transactions(
    account: views.View, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None,
    walletIds: list[str] | None = None, **_: Any,
) -> views.View:
    owned = ctx(info).sim.ledger.account(account["id"]).wallet_ids
    wallet_ids = [w for w in (walletIds or owned) if w in owned]
    return views.connection_view(_tx_views(info, wallet_ids), first, after)


@resolves(WALLET_TYPES, "transactions")
def wallet_transactions(
    wallet: views.View, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None, **_: Any
) -> views.View:
    return views.connection_view(_tx_views(info, [wallet["id"]]), first, after)


@resolves(WALLET_TYPES, "transactionsByPaymentHash")
def wallet_transactions_by_hash(wallet: views.View, info: GraphQLResolveInfo, paymentHash: str) -> list[views.View]:
    return [t for t in _tx_views(info, [wallet["id"]]) if t["initiationVia"]["paymentHash"] == paymentHash.lower()]


@resolves(WALLET_TYPES, "transactionsByPaymentRequest")
def wallet_transactions_by_request(
    wallet: views.View, info: GraphQLResolveInfo, paymentRequest: str
) -> list[views.View]:
    return [t for t in _tx_views(info, [wallet["id"]]) if t["initiationVia"]["paymentRequest"] == paymentRequest]


@resolves(WALLET_TYPES, "transactionById")
def wallet_transaction_by_id(wallet: views.View, info: GraphQLResolveInfo, transactionId: str) -> views.View:
    for tx in _tx_views(info, [wallet["id"]]):
        if tx["id"] == transactionId:
            return tx
    raise GraphQLError(f"Transaction {transactionId} not found", extensions={"code": "NOT_FOUND"})


@resolves(WALLET_TYPES, "invoiceByPaymentHash")
def wallet_invoice_by_hash(wallet: views.View, info: GraphQLResolveInfo, paymentHash: str) -> views.View:
    invoice = _invoice_by(info, paymentHash, None)
    if invoice.wallet_id != wallet["id"]:
        raise GraphQLError(f"Couldn't find invoice for payment hash {paymentHash}", extensions={"code": "NOT_FOUND"})
    return views.invoice_view(invoice, ctx(info).sim.ledger)


# ---- Mutation ------------------------------------------------------------------


@resolves("Mutation", "lnInvoiceCreate")
async def ln_invoice_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    key = require(info, Scope.RECEIVE)
    await gate(info, wallet_target(info, input["walletId"]))
    ledger = ctx(info).sim.ledger
    try:
        owned_wallet(info, key, input["walletId"])
        invoice = ledger.create_invoice(
            input["walletId"], input["amount"], input.get("memo"), input.get("expiresIn"), input.get("externalId"))
    except LedgerError as exc:
        return {"errors": [views.error_view(exc)], "invoice": None}
    return {"errors": [], "invoice": views.invoice_view(invoice, ledger)}


@resolves("Mutation", "lnInvoiceCreateOnBehalfOfRecipient")
async def ln_invoice_create_on_behalf(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    await gate(info, wallet_target(info, input["recipientWalletId"]))
    ledger = ctx(info).sim.ledger
    try:
        invoice = ledger.create_invoice(
            input["recipientWalletId"], input["amount"], input.get("memo"), input.get("expiresIn"),
            input.get("externalId"))
    except LedgerError as exc:
        return {"errors": [views.error_view(exc)], "invoice": None}
    return {"errors": [], "invoice": views.invoice_view(invoice, ledger)}


def _recipient_target(info: GraphQLResolveInfo, payment_request: str) -> Target:
    try:
        invoice = ctx(info).sim.ledger.invoice_by_request(payment_request)
    except LedgerError:
        return Target()
    return wallet_target(info, invoice.wallet_id)


@resolves("Mutation", "lnInvoicePaymentSend")
async def ln_invoice_payment_send(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    key = require(info, Scope.WRITE)
    plan = await gate(info, _recipient_target(info, input["paymentRequest"]))
    sim = ctx(info).sim
    try:
        owned_wallet(info, key, input["walletId"])
    except LedgerError as exc:
        return {"errors": [views.error_view(exc)], "status": SendResult.FAILURE.value, "transaction": None}
    if plan.failure:
        refusal = NoRoute("Payment failed: no route to the destination (injected fault).")
        return {"errors": [views.error_view(refusal)], "status": SendResult.FAILURE.value, "transaction": None}
    outcome = sim.ledger.send_payment(input["walletId"], input["paymentRequest"], input.get("memo"), hold=plan.pending)
    if outcome.result is SendResult.PENDING and outcome.transaction is not None and outcome.payment is not None:
        sim.spawn(_settle_later(ctx(info), outcome.payment.id, plan.resolve_after_ms))
    return {
        "errors": [views.error_view(outcome.error)] if outcome.error else [],
        "status": outcome.result.value,
        "transaction": views.transaction_view(outcome.transaction, sim.prices, _display_currency(info, input["walletId"]))
        if outcome.transaction else None,
    }


async def _settle_later(context: RequestContext, payment_id: str, delay_ms: int) -> None:
    await asyncio.sleep(delay_ms / 1000)
    context.sim.ledger.settle_payment(payment_id)


# ---- Subscription ----------------------------------------------------------------


@subscribes("myUpdates")
def my_updates(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[Any]:
    """Every committed transaction on the caller's wallets, led by the current price.

    The leading RealtimePrice update tells a client the subscription is live.
    """
    key = require(info, Scope.READ)
    sim = ctx(info).sim
    account = sim.ledger.account(key.account_id)
    wallet_ids = set(account.wallet_ids)
    first = views.realtime_price_view(account.display_currency, sim.prices, sim.clock.now())
    return sim.broker.stream(lambda e: e.wallet_id in wallet_ids, first=[first])


@resolves("Subscription", "myUpdates")
def my_updates_payload(item: Any, info: GraphQLResolveInfo) -> views.View:
    sim = ctx(info).sim
    key = require(info, Scope.READ)
    account = sim.ledger.account(key.account_id)
    if not isinstance(item, LedgerEvent):
        return {"errors": [], "me": views.user_view(account), "update": item}
    tx = views.transaction_view(item.transaction, sim.prices, account.display_currency)
    update: dict[str, object]
    if item.transaction.direction is Direction.RECEIVE:
        update = {
            "__typename": "LnUpdate", "paymentHash": item.invoice.payment_hash, "walletId": item.wallet_id,
            "status": InvoiceStatus.PAID.value, "transaction": tx,
        }
    else:
        update = {
            "__typename": "IntraLedgerUpdate", "txNotificationType": "IntraLedgerPayment",
            "walletId": item.wallet_id, "amount": item.transaction.amount,
            "displayCurrencyPerSat": _per_sat(sim, account.display_currency),
            "usdPerSat": _per_sat(sim, "USD"), "transaction": tx,
        }
    return {"errors": [], "me": views.user_view(account), "update": update}


def _per_sat(sim: SimState, code: str) -> float:
    quote = sim.prices.sat_price(code)
    return quote.base / 10**quote.offset / 10 ** sim.prices.currency(code).fraction_digits


@subscribes("lnInvoicePaymentStatusByHash", "lnInvoicePaymentStatusByPaymentRequest", "lnInvoicePaymentStatus")
def payment_status_updates(_: Any, info: GraphQLResolveInfo, input: dict[str, str]) -> AsyncIterator[Any]:
    """The invoice's status now and, if it is still unpaid, once more when it is paid."""
    invoice = _invoice_by(info, input.get("paymentHash"), input.get("paymentRequest"))
    sim = ctx(info).sim
    stream = sim.broker.stream(
        lambda e: e.invoice.payment_hash == invoice.payment_hash and e.transaction.direction is Direction.RECEIVE,
        first=[invoice],
    )
    return _until_settled(stream, sim.ledger)


async def _until_settled(stream: EventStream, ledger: Ledger) -> AsyncIterator[Any]:
    try:
        async for item in stream:
            invoice = item.invoice if isinstance(item, LedgerEvent) else item
            yield invoice
            if ledger.invoice_status(invoice) is not InvoiceStatus.PENDING:
                return
    finally:
        await stream.aclose()


@resolves("Subscription", "lnInvoicePaymentStatusByHash", "lnInvoicePaymentStatusByPaymentRequest",
          "lnInvoicePaymentStatus")
def payment_status_payload(invoice: Any, info: GraphQLResolveInfo, **_: Any) -> views.View:
    return views.payment_status_view(invoice, ctx(info).sim.ledger)
