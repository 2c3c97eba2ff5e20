"""Resolvers for the Blink schema's fields, dispatched by (parent type, field name).

The simulator executes against its own copy of Blink's schema (`sim/schema.py`, whose
scalars parse input as Blink's do) and binds its behaviour per execution through
graphql-core's `field_resolver`, leaving the shared schema object the client uses
untouched. Root fields pass `sim/access.py` first (Blink's authentication, walletId and
scope middlewares). Fields without an entry here are read from the parent value (a dict
from views); a field the view does not carry answers NOT_IMPLEMENTED rather than null.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, default_field_resolver

from tipsplit.sim import access, views
from tipsplit.sim.events import EventStream
from tipsplit.sim.faults import FaultPlan, Target
from tipsplit.sim.ledger import (
    Account,
    ApiKey,
    Direction,
    InvalidAmount,
    Invoice,
    InvoiceStatus,
    Ledger,
    LedgerError,
    LedgerEvent,
    MismatchedCurrency,
    NotFound,
    SendResult,
    SubOneCent,
    Transaction,
    UsdSenderUnsupported,
    Wallet,
    WalletCurrency,
    unknown_wallet,
)
from tipsplit.sim.limits import INVOICE_CREATE, INVOICE_CREATE_FOR_RECIPIENT
from tipsplit.sim.prices import UnknownCurrency
from tipsplit.sim.scalars import Refused
from tipsplit.sim.state import RequestContext, SimState

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
    """The execution's field_resolver: our resolver if one is registered, else the parent's value.

    An argument a Blink scalar refused reaches Blink's resolver as an error value, and
    the resolver answers it before doing anything: mutations in their payload's
    `errors` (message only), everything else as a GraphQL error.
    """
    resolver = RESOLVERS.get((info.parent_type.name, info.field_name))
    if info.parent_type.name in ("Query", "Mutation"):
        denied = access.check(info.parent_type.name, info.field_name, args, ctx(info).api_key, ctx(info).sim.ledger)
        if denied is not None and denied.in_payload:
            return _payload_error(denied.error.message)
        if denied is not None:
            raise denied.error
    if resolver is None:
        if isinstance(source, dict) and info.field_name not in source and not _is_payload(info):
            raise unsupported(info)
        if source is None:
            raise unsupported(info)
        return default_field_resolver(source, info, **args)
    # Most fields take no arguments: nothing to look through.
    refusal = first_refusal(args, INPUT_ORDER.get(info.field_name, ())) if args else None
    if refusal is not None:
        if info.parent_type.name == "Mutation":
            return _payload_error(refusal.message)
        raise GraphQLError(refusal.message, extensions={"code": refusal.code})
    return resolver(source, info, **args)


def _payload_error(message: str) -> views.View:
    """`{errors: [{message}]}`: how Blink's resolvers and walletId middleware refuse a mutation's input."""
    return {"errors": [{"__typename": "GraphQLApplicationError", "message": message, "code": None, "path": None}]}


def _is_payload(info: GraphQLResolveInfo) -> bool:
    """Blink's mutation payloads leave unset fields undefined, which GraphQL answers as null."""
    return info.parent_type.name.endswith("Payload")


def unsupported(info: GraphQLResolveInfo) -> GraphQLError:
    """The answer for a field of Blink's schema the simulator does not model: an error, never a silent null."""
    return GraphQLError(f"The simulator does not support {info.parent_type.name}.{info.field_name}",
                        extensions={"code": "NOT_IMPLEMENTED"})


def resolve_subscription(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    """The execution's subscribe_field_resolver: returns the event stream for a Subscription field."""
    subscriber = SUBSCRIBERS.get(info.field_name)
    if subscriber is None:
        raise unsupported(info)
    refusal = first_refusal(args)
    if refusal is not None:
        raise GraphQLError(refusal.message, extensions={"code": refusal.code})
    return subscriber(source, info, **args)


_INVOICE_FOR_RECIPIENT = ("recipientWalletId", "amount", "memo", "descriptionHash", "expiresIn", "externalId",
                          "webhookUrl")
INPUT_ORDER: dict[str, tuple[str, ...]] = {
    "lnInvoiceCreate": ("walletId", "amount", "memo", "expiresIn", "externalId"),
    "lnUsdInvoiceCreate": ("walletId", "amount", "memo", "expiresIn", "externalId"),
    "lnInvoiceCreateOnBehalfOfRecipient": _INVOICE_FOR_RECIPIENT,
    "lnUsdInvoiceCreateOnBehalfOfRecipient": _INVOICE_FOR_RECIPIENT,
    "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient": _INVOICE_FOR_RECIPIENT,
    "lnInvoicePaymentSend": ("walletId", "paymentRequest", "memo"),
    "intraLedgerPaymentSend": ("walletId", "recipientWalletId", "amount", "memo"),
}
"""The order in which Blink's resolvers look at their inputs, where it is not the schema's (alphabetical) one."""


def first_refusal(value: Any, order: tuple[str, ...] = ()) -> Refused | None:
    """The first value a scalar refused, looking through lists and input objects (a mutation's `input` in `order`)."""
    if isinstance(value, Refused):
        return value
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("input"), dict):
            return first_refusal(value["input"], order)
        items = [value[k] for k in order if k in value] + [v for k, v in value.items() if k not in order]
    elif isinstance(value, list):
        items = value
    else:
        return None
    # Only refusals and containers can hold one: plain values are passed over without a call each.
    for item in items:
        if isinstance(item, (Refused, dict, list)) and (found := first_refusal(item)) is not None:
            return found
    return None


# ---- helpers -------------------------------------------------------------------


def ctx(info: GraphQLResolveInfo) -> RequestContext:
    context: RequestContext = info.context
    return context


def gql_error(error: LedgerError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code})


def caller(info: GraphQLResolveInfo) -> ApiKey:
    """The caller's key, for fields `access.check` already let through (they all need an account)."""
    key = ctx(info).api_key
    if key is None:
        raise access.not_authorized()
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



# ---- Query -------------------------------------------------------------------


@resolves("Query", "me")
async def me(_: Any, info: GraphQLResolveInfo) -> views.View:
    key = caller(info)
    account = ctx(info).sim.ledger.account(key.account_id)
    await gate(info, account_target(account))
    return views.user_view(account)


@resolves("Query", "authorization")
async def authorization(_: Any, info: GraphQLResolveInfo) -> views.View:
    key = caller(info)
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


def _tx_views(
    info: GraphQLResolveInfo, wallet_ids: list[str], keep: Callable[[Transaction], bool] = lambda _tx: True
) -> list[views.View]:
    """The wallets' transactions as Blink lists them, newest first; `keep` picks before any view is built."""
    sim = ctx(info).sim
    txs = [tx for w in wallet_ids for tx in sim.ledger.transactions(w) if keep(tx)]
    txs.sort(key=lambda t: t.created_at, reverse=True)
    return [views.transaction_view(tx, sim.prices, _display_currency(info, tx.wallet_id)) for tx in txs]


def _display_currency(info: GraphQLResolveInfo, wallet_id: str) -> str:
    ledger = ctx(info).sim.ledger
    return ledger.account(ledger.wallet(wallet_id).account_id).display_currency


@resolves("ConsumerAccount", "transactions")
def account_transactions(
    account: views.View, info: GraphQLResolveInfo, walletIds: list[str] | None = None, **page: Any,
) -> views.View:
    owned = ctx(info).sim.ledger.account(account["id"]).wallet_ids
    wallet_ids = [w for w in (walletIds or owned) if w in owned]
    return views.connection_view(_tx_views(info, wallet_ids), **page)


@resolves(WALLET_TYPES, "transactions")
def wallet_transactions(wallet: views.View, info: GraphQLResolveInfo, **page: Any) -> views.View:
    return views.connection_view(_tx_views(info, [wallet["id"]]), **page)


@resolves(WALLET_TYPES, "transactionsByAddress")
def wallet_transactions_by_address(wallet: views.View, info: GraphQLResolveInfo, address: str, **page: Any) -> views.View:
    """The simulator has no on-chain side: no wallet has transactions to any address."""
    return views.connection_view([], **page)


def _invoice_views(info: GraphQLResolveInfo, wallet_ids: list[str]) -> list[views.View]:
    ledger = ctx(info).sim.ledger
    found = [i for i in ledger.invoices() if i.wallet_id in wallet_ids]
    found.sort(key=lambda i: i.created_at, reverse=True)
    return [views.invoice_view(i, ledger) for i in found]


@resolves("ConsumerAccount", "invoices")
def account_invoices(
    account: views.View, info: GraphQLResolveInfo, walletIds: list[str] | None = None, **page: Any,
) -> views.View:
    owned = ctx(info).sim.ledger.account(account["id"]).wallet_ids
    wallet_ids = [w for w in (walletIds or owned) if w in owned]
    return views.connection_view(_invoice_views(info, wallet_ids), key="paymentHash", **page)


@resolves(WALLET_TYPES, "invoices")
def wallet_invoices(wallet: views.View, info: GraphQLResolveInfo, **page: Any) -> views.View:
    return views.connection_view(_invoice_views(info, [wallet["id"]]), key="paymentHash", **page)


@resolves("ConsumerAccount", "csvTransactions")
def account_csv_transactions(account: views.View, info: GraphQLResolveInfo, walletIds: list[str]) -> str:
    """Like Blink's, every wallet of the account, whatever `walletIds` says."""
    sim = ctx(info).sim
    found = sim.ledger.account(account["id"])
    listed = [tx for w in found.wallet_ids for tx in reversed(sim.ledger.transactions(w))]
    return views.csv_transactions(listed, sim.prices, found.display_currency)


@resolves(WALLET_TYPES, "transactionsByPaymentHash")
def wallet_transactions_by_hash(wallet: views.View, info: GraphQLResolveInfo, paymentHash: str) -> list[views.View]:
    wanted = paymentHash.lower()
    return _tx_views(info, [wallet["id"]], lambda tx: tx.payment_hash == wanted)


@resolves(WALLET_TYPES, "transactionsByPaymentRequest")
def wallet_transactions_by_request(
    wallet: views.View, info: GraphQLResolveInfo, paymentRequest: str
) -> list[views.View]:
    return _tx_views(info, [wallet["id"]], lambda tx: tx.payment_request == paymentRequest)


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


async def _add_invoice(
    info: GraphQLResolveInfo, wallet_id: str, currency: WalletCurrency, amount: int, denomination: WalletCurrency,
    fields: dict[str, Any], limiter: str = INVOICE_CREATE_FOR_RECIPIENT,
) -> views.View:
    """addInvoice* of Blink's add-invoice-for-wallet.ts, its checks in its order.

    The wallet must exist and hold `currency`, the amount (sats or cents, by
    `denomination`) must be positive; then the account's `limiter` takes a point;
    a USD wallet's invoice is priced in sats at the price `realtimePrice` serves
    and credits the cents fixed now.
    """
    await gate(info, wallet_target(info, wallet_id))
    sim = ctx(info).sim
    try:
        wallet = _blink_wallet(sim.ledger, wallet_id)
        if wallet.currency is not currency:
            raise MismatchedCurrency()
        if amount <= 0:
            raise InvalidAmount(denomination)
        sim.limits.consume(limiter, wallet.account_id)
        sats, cents = amount, None
        if currency is WalletCurrency.USD:
            if denomination is WalletCurrency.USD:
                sats, cents = sim.prices.sats_for_cents(amount), amount
            else:
                cents = sim.prices.cents_for_sats(amount)
                if cents == 0:
                    raise SubOneCent()
        invoice = sim.ledger.create_invoice(
            wallet_id, sats, fields.get("memo"), fields.get("expiresIn"), fields.get("externalId"), usd_cents=cents)
    except LedgerError as exc:
        return {"errors": [views.error_view(exc)], "invoice": None}
    return {"errors": [], "invoice": views.invoice_view(invoice, sim.ledger)}


def _blink_wallet(ledger: Ledger, wallet_id: str) -> Wallet:
    try:
        return ledger.wallet(wallet_id)
    except NotFound:
        raise unknown_wallet() from None


@resolves("Mutation", "lnInvoiceCreate")
async def ln_invoice_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    return await _add_invoice(
        info, input["walletId"], WalletCurrency.BTC, input["amount"], WalletCurrency.BTC, input, INVOICE_CREATE)


@resolves("Mutation", "lnUsdInvoiceCreate")
async def ln_usd_invoice_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    return await _add_invoice(
        info, input["walletId"], WalletCurrency.USD, input["amount"], WalletCurrency.USD, input, INVOICE_CREATE)


@resolves("Mutation", "lnInvoiceCreateOnBehalfOfRecipient")
async def ln_invoice_create_on_behalf(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    return await _add_invoice(
        info, input["recipientWalletId"], WalletCurrency.BTC, input["amount"], WalletCurrency.BTC, input)


@resolves("Mutation", "lnUsdInvoiceCreateOnBehalfOfRecipient")
async def ln_usd_invoice_create_on_behalf(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    return await _add_invoice(
        info, input["recipientWalletId"], WalletCurrency.USD, input["amount"], WalletCurrency.USD, input)


@resolves("Mutation", "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient")
async def ln_usd_invoice_btc_denominated_on_behalf(
    _: Any, info: GraphQLResolveInfo, input: dict[str, Any]
) -> views.View:
    return await _add_invoice(
        info, input["recipientWalletId"], WalletCurrency.USD, input["amount"], WalletCurrency.BTC, input)


@resolves("Mutation", "intraLedgerPaymentSend")
async def intraledger_payment_send(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    """Pay sats from the caller's BTC wallet to any wallet id; a USD wallet is credited at the served price."""
    await gate(info, wallet_target(info, input["recipientWalletId"]))
    sim = ctx(info).sim
    try:
        recipient = _blink_wallet(sim.ledger, input["recipientWalletId"])
        cents = sim.prices.cents_for_sats(input["amount"]) if recipient.currency is WalletCurrency.USD else None
        sent = sim.ledger.transfer(input["walletId"], recipient.id, input["amount"], input.get("memo"), cents)
    except LedgerError as exc:
        return {"errors": [views.error_view(exc)], "status": SendResult.FAILURE.value, "transaction": None}
    display = _display_currency(info, input["walletId"])
    return {"errors": [], "status": SendResult.SUCCESS.value,
            "transaction": views.transaction_view(sent, sim.prices, display)}


def _recipient_target(info: GraphQLResolveInfo, payment_request: str) -> Target:
    try:
        invoice = ctx(info).sim.ledger.invoice_by_request(payment_request)
    except LedgerError:
        return Target()
    return wallet_target(info, invoice.wallet_id)


@resolves("Mutation", "lnInvoicePaymentSend")
async def ln_invoice_payment_send(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> views.View:
    plan = await gate(info, _recipient_target(info, input["paymentRequest"]))
    sim = ctx(info).sim
    try:
        outcome = sim.ledger.send_payment(
            input["walletId"], input["paymentRequest"], input.get("memo"), hold=plan.pending, fail=plan.failure)
    except UsdSenderUnsupported as exc:
        raise gql_error(exc) from None
    if outcome.held and outcome.payment is not None:
        sim.spawn(_settle_later(ctx(info), outcome.payment.id, plan.resolve_after_ms))
    sent = outcome.transaction

    def transaction(_: GraphQLResolveInfo) -> views.View | None:
        """Rendered only when the document asks for it (graphql-core calls a callable field value)."""
        return views.transaction_view(sent, sim.prices, _display_currency(info, input["walletId"])) if sent else None

    return {
        "errors": [views.error_view(outcome.error)] if outcome.error else [],
        "status": outcome.result.value,
        "transaction": transaction,
    }


async def _settle_later(context: RequestContext, payment_id: str, delay_ms: int) -> None:
    await asyncio.sleep(delay_ms / 1000)
    context.sim.ledger.settle_payment(payment_id)


# ---- Subscription ----------------------------------------------------------------


@subscribes("myUpdates")
def my_updates(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[Any]:
    """Every committed transaction on the caller's wallets, led by the current price.

    The leading RealtimePrice update tells a client the subscription is live. Like
    Blink's, it asks for an account and no particular scope.
    """
    key = ctx(info).api_key
    if key is None:
        raise access.not_authenticated_for_subscription()
    sim = ctx(info).sim
    account = sim.ledger.account(key.account_id)
    wallet_ids = set(account.wallet_ids)
    first = views.realtime_price_view(account.display_currency, sim.prices, sim.clock.now())
    return sim.broker.stream(lambda e: e.wallet_id in wallet_ids, first=[first])


@resolves("Subscription", "myUpdates")
def my_updates_payload(item: Any, info: GraphQLResolveInfo) -> views.View:
    sim = ctx(info).sim
    key = caller(info)
    account = sim.ledger.account(key.account_id)
    if not isinstance(item, LedgerEvent):
        return {"errors": [], "me": views.user_view(account), "update": item}
    tx = views.transaction_view(item.transaction, sim.prices, account.display_currency)
    update: dict[str, object]
    if item.transaction.direction is Direction.RECEIVE and item.invoice is not None:
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
    """The invoice's status now, EXPIRED a second after expiry if still unpaid, and PAID when paid.

    As on Blink, the stream stays open until the client completes it, and a
    payment held past expiry still delivers PAID after EXPIRED.
    """
    invoice = _invoice_by(info, input.get("paymentHash"), input.get("paymentRequest"))
    sim = ctx(info).sim
    stream = sim.broker.stream(
        lambda e: e.invoice is invoice and e.transaction.direction is Direction.RECEIVE,
        wake_on_clock=True,
    )
    return _status_updates(stream, sim.ledger, invoice)


async def _status_updates(stream: EventStream, ledger: Ledger, invoice: Invoice) -> AsyncIterator[Invoice]:
    try:
        yield invoice
        expired_told = ledger.invoice_status(invoice) is not InvoiceStatus.PENDING
        while invoice.paid_at is None:
            timeout = None if expired_told else max(invoice.expires_at + 1 - ledger.now(), 0.0)
            item = await stream.next(timeout)
            if isinstance(item, LedgerEvent):
                yield invoice
            elif not expired_told and ledger.now() >= invoice.expires_at + 1:
                expired_told = True
                yield invoice
        await stream.aclose()
        await asyncio.Event().wait()
    finally:
        await stream.aclose()


@resolves("Subscription", "lnInvoicePaymentStatusByHash", "lnInvoicePaymentStatusByPaymentRequest",
          "lnInvoicePaymentStatus")
def payment_status_payload(invoice: Any, info: GraphQLResolveInfo, **_: Any) -> views.View:
    return views.payment_status_view(invoice, ctx(info).sim.ledger)
