"""Ledger objects rendered as values of the Blink schema's types.

Plain dicts keyed by schema field names; abstract types (Wallet, Account,
Invoice, InitiationVia, SettlementVia, UserUpdate, Error) carry `__typename`,
which graphql-core's default type resolver reads.
"""

import base64
import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

from tipsplit.sim.ledger import (
    Account,
    Direction,
    Invoice,
    InvoiceStatus,
    Ledger,
    LedgerError,
    Settlement,
    Transaction,
    TxStatus,
    Wallet,
    WalletCurrency,
)
from tipsplit.sim.prices import PriceBook

View = dict[str, Any]


def error_view(error: LedgerError, path: list[str] | None = None) -> View:
    return {"__typename": "GraphQLApplicationError", "message": error.message, "code": error.code, "path": path}


def user_id(account: Account) -> str:
    """Blink users and accounts have distinct ids; derive a stable one for the user."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"blink-sim-user:{account.id}"))


def user_view(account: Account) -> View:
    return {
        "id": user_id(account), "username": account.username, "createdAt": int(account.created_at),
        "language": "", "totpEnabled": False, "phone": None, "email": None, "contacts": [],
        "supportChat": [], "_account_id": account.id,
    }


def account_view(account: Account) -> View:
    return {
        "__typename": "ConsumerAccount", "id": account.id, "defaultWalletId": account.default_wallet_id,
        "defaultWallet": public_wallet_view(account.default_wallet_id, account.default_currency),
        "displayCurrency": account.display_currency, "level": "ONE", "callbackEndpoints": [],
        "callbackPortalUrl": "", "pendingIncomingTransactions": [], "quiz": [],
        "notificationSettings": {"push": {"enabled": True, "disabledCategories": []}},
    }


def public_wallet_view(wallet_id: str, currency: WalletCurrency) -> View:
    return {"id": wallet_id, "currency": currency.value, "walletCurrency": currency.value}


def wallet_view(wallet: Wallet) -> View:
    return {
        "__typename": "BTCWallet" if wallet.currency is WalletCurrency.BTC else "UsdWallet",
        "id": wallet.id, "accountId": wallet.account_id, "walletCurrency": wallet.currency.value,
        "balance": wallet.balance, "pendingIncomingBalance": 0, "pendingIncomingTransactions": [],
        "pendingIncomingTransactionsByAddress": [],
    }


def invoice_view(invoice: Invoice, ledger: Ledger) -> View:
    return {
        "__typename": "LnInvoice", "paymentHash": invoice.payment_hash,
        "paymentRequest": invoice.payment_request, "paymentSecret": invoice.payment_secret,
        "paymentStatus": ledger.invoice_status(invoice).value, "satoshis": invoice.amount,
        "createdAt": int(invoice.created_at), "externalId": invoice.external_id,
    }


def payment_status_view(invoice: Invoice, ledger: Ledger) -> View:
    """LnInvoicePaymentStatus(Payload): the preimage is shown only once the invoice is paid."""
    status = ledger.invoice_status(invoice)
    return {
        "paymentHash": invoice.payment_hash, "paymentRequest": invoice.payment_request,
        "paymentPreimage": invoice.preimage if status is InvoiceStatus.PAID else None,
        "status": status.value, "errors": [],
    }


def price_view(base: int, offset: int, formatted: str | None = None) -> View:
    view: View = {"base": base, "offset": offset, "currencyUnit": "MINOR"}
    if formatted is not None:
        view["formattedAmount"] = formatted
    return view


def currency_view(code: str, prices: PriceBook) -> View:
    currency = prices.currency(code)
    return {
        "id": currency.code, "name": currency.name, "symbol": currency.symbol,
        "flag": currency.flag, "fractionDigits": currency.fraction_digits,
    }


def realtime_price_view(code: str, prices: PriceBook, now: float) -> View:
    sat, cent = prices.sat_price(code), prices.usd_cent_price(code)
    return {
        "__typename": "RealtimePrice", "id": f"{code.upper()}:{sat.base}", "timestamp": int(now),
        "denominatorCurrency": code.upper(), "denominatorCurrencyDetails": currency_view(code, prices),
        "btcSatPrice": price_view(sat.base, sat.offset), "usdCentPrice": price_view(cent.base, cent.offset),
    }


def transaction_view(tx: Transaction, prices: PriceBook, display_currency: str) -> View:
    unit = tx.currency.value
    quote = prices.sat_price(display_currency) if unit == "BTC" else prices.usd_cent_price(display_currency)
    display = prices.to_display(tx.amount, unit, display_currency)
    if tx.settlement is Settlement.INTRALEDGER:
        settlement_via: View = {
            "__typename": "SettlementViaIntraLedger", "counterPartyWalletId": tx.counterparty_wallet_id,
            "counterPartyUsername": tx.counterparty_username, "preImage": tx.preimage,
        }
    else:
        settlement_via = {"__typename": "SettlementViaLn", "preImage": tx.preimage, "paymentSecret": None}
    if tx.payment_hash is not None:
        initiation_via: View = {
            "__typename": "InitiationViaLn", "paymentHash": tx.payment_hash, "paymentRequest": tx.payment_request,
        }
    else:
        initiation_via = {
            "__typename": "InitiationViaIntraLedger", "counterPartyWalletId": tx.counterparty_wallet_id,
            "counterPartyUsername": tx.counterparty_username,
        }
    return {
        "id": tx.id, "createdAt": int(tx.created_at), "direction": tx.direction.value, "memo": tx.memo,
        "externalId": tx.external_id, "status": tx.status.value,
        "settlementAmount": tx.signed_amount, "settlementCurrency": unit, "settlementFee": 0,
        "settlementDisplayAmount": ("-" if tx.signed_amount < 0 else "") + display,
        "settlementDisplayCurrency": display_currency,
        "settlementDisplayFee": prices.to_display(0, unit, display_currency),
        "settlementPrice": price_view(quote.base, quote.offset, prices.to_display(1, unit, display_currency)),
        "initiationVia": initiation_via,
        "settlementVia": settlement_via,
    }


def connection_view(
    nodes: list[View], first: int | None = None, after: str | None = None, last: int | None = None,
    before: str | None = None, key: str = "id",
) -> View:
    """A Relay connection (first/after, last/before) over nodes; a node's cursor is its `key`."""
    cursors = [n[key] for n in nodes]
    start = cursors.index(after) + 1 if after in cursors else (len(nodes) if after is not None else 0)
    end = cursors.index(before) if before in cursors else len(nodes)
    end = max(start, end)
    if first is not None:
        end = min(end, start + max(first, 0))
    if last is not None:
        start = max(start, end - max(last, 0))
    page = nodes[start:end]
    return {
        "edges": [{"cursor": n[key], "node": n} for n in page],
        "pageInfo": {
            "hasNextPage": end < len(nodes), "hasPreviousPage": start > 0,
            "startCursor": page[0][key] if page else None, "endCursor": page[-1][key] if page else None,
        },
    }


def csv_transactions(transactions: list[Transaction], prices: PriceBook, display_currency: str) -> str:
    """Blink's csvTransactions: its CsvWalletsExport columns, base64 of the UTF-8 CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for tx in transactions:
        credit = tx.amount if tx.direction is Direction.RECEIVE else 0
        debit = tx.amount if tx.direction is Direction.SEND else 0
        via_invoice = tx.payment_hash is not None
        kind = ("ln_on_us" if via_invoice else "on_us") if tx.settlement is Settlement.INTRALEDGER else (
            "invoice" if tx.direction is Direction.RECEIVE else "payment")
        row = {
            "id": tx.id, "walletId": tx.wallet_id, "type": kind, "credit": credit, "debit": debit, "fee": 0,
            "currency": tx.currency.value, "timestamp": js_date(tx.created_at),
            "pendingConfirmation": "true" if tx.status is TxStatus.PENDING else "false",
            "lnMemo": tx.memo if via_invoice else "", "recipientWalletId": tx.counterparty_wallet_id or "",
            "username": tx.counterparty_username or "", "memoFromPayer": "" if via_invoice else (tx.memo or ""),
            "paymentHash": tx.payment_hash or "",
            "displayAmount": prices.to_display(tx.amount, tx.currency.value, display_currency),
            "displayFee": prices.to_display(0, tx.currency.value, display_currency),
            "displayCurrency": display_currency,
        }
        writer.writerow([row.get(column, "") for column in CSV_COLUMNS])
    return base64.b64encode(out.getvalue().encode("utf-8")).decode("ascii")


CSV_COLUMNS = (
    "id", "walletId", "type", "credit", "debit", "fee", "currency", "timestamp", "pendingConfirmation", "journalId",
    "lnMemo", "usd", "feeUsd", "recipientWalletId", "username", "memoFromPayer", "paymentHash", "pubkey",
    "feeKnownInAdvance", "address", "txHash", "displayAmount", "displayFee", "displayCurrency",
)


def js_date(timestamp: float) -> str:
    """A JavaScript Date as `String(date)` writes it in UTC."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")
