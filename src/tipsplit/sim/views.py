"""Ledger objects rendered as values of the Blink schema's types.

Plain dicts keyed by schema field names; abstract types (Wallet, Account,
Invoice, InitiationVia, SettlementVia, UserUpdate, Error) carry `__typename`,
which graphql-core's default type resolver reads.
"""

import uuid
from typing import Any

from tipsplit.sim.ledger import (
    Account, Invoice, InvoiceStatus, Ledger, LedgerError, Settlement, Transaction, Wallet, WalletCurrency,
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
    }


def public_wallet_view(wallet_id: str, currency: WalletCurrency) -> View:
    return {"id": wallet_id, "currency": currency.value, "walletCurrency": currency.value}


def wallet_view(wallet: Wallet) -> View:
    return {
        "__typename": "BTCWallet" if wallet.currency is WalletCurrency.BTC else "UsdWallet",
        "id": wallet.id, "accountId": wallet.account_id, "walletCurrency": wallet.currency.value,
        "balance": wallet.balance, "pendingIncomingBalance": 0, "pendingIncomingTransactions": [],
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
    sat = prices.sat_price(display_currency)
    display = prices.sats_to_display(tx.amount, display_currency)
    if tx.settlement is Settlement.INTRALEDGER:
        settlement_via: View = {
            "__typename": "SettlementViaIntraLedger", "counterPartyWalletId": tx.counterparty_wallet_id,
            "counterPartyUsername": tx.counterparty_username, "preImage": tx.preimage,
        }
    else:
        settlement_via = {"__typename": "SettlementViaLn", "preImage": tx.preimage, "paymentSecret": None}
    return {
        "id": tx.id, "createdAt": int(tx.created_at), "direction": tx.direction.value, "memo": tx.memo,
        "externalId": tx.external_id, "status": tx.status.value,
        "settlementAmount": tx.signed_amount, "settlementCurrency": "BTC", "settlementFee": 0,
        "settlementDisplayAmount": ("-" if tx.signed_amount < 0 else "") + display,
        "settlementDisplayCurrency": display_currency, "settlementDisplayFee": prices.sats_to_display(0, display_currency),
        "settlementPrice": price_view(sat.base, sat.offset, prices.sats_to_display(1, display_currency)),
        "initiationVia": {
            "__typename": "InitiationViaLn", "paymentHash": tx.payment_hash, "paymentRequest": tx.payment_request,
        },
        "settlementVia": settlement_via,
    }


def connection_view(nodes: list[View], first: int | None, after: str | None) -> View:
    """A Relay connection over nodes with an `id`; the cursor is the node id."""
    start = 0
    if after is not None:
        ids = [n["id"] for n in nodes]
        start = ids.index(after) + 1 if after in ids else len(nodes)
    end = len(nodes) if first is None else min(len(nodes), start + max(first, 0))
    page = nodes[start:end]
    return {
        "edges": [{"cursor": n["id"], "node": n} for n in page],
        "pageInfo": {
            "hasNextPage": end < len(nodes), "hasPreviousPage": start > 0,
            "startCursor": page[0]["id"] if page else None, "endCursor": page[-1]["id"] if page else None,
        },
    }
