"""The simulator's in-memory Blink ledger: accounts, wallets, API keys, invoices, payments.

Pure Python with no I/O and no awaits: every mutation runs to completion before
anything else on the event loop can look, so a payment is atomic without locks.
Randomness (ids, keys, preimages) comes from one seeded `random.Random`, so a run
is reproducible given its seed and the order of calls. Listeners hear about each
committed transaction in commit order; the GraphQL subscriptions and webhooks
hang off them.
"""

import dataclasses
import hashlib
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tipsplit.sim.bolt11 import PaymentRequestError, decode_payment_request, encode_payment_request

DEFAULT_EXPIRY_MINUTES = 24 * 60
MAX_MEMO_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,50}$")
API_KEY_ALPHABET = string.ascii_letters + string.digits


class Scope(StrEnum):
    READ = "READ"
    RECEIVE = "RECEIVE"
    WRITE = "WRITE"


ALL_SCOPES = frozenset(Scope)


class WalletCurrency(StrEnum):
    BTC = "BTC"
    USD = "USD"


class InvoiceStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    EXPIRED = "EXPIRED"


class SendResult(StrEnum):
    SUCCESS = "SUCCESS"
    ALREADY_PAID = "ALREADY_PAID"
    FAILURE = "FAILURE"
    PENDING = "PENDING"


class TxStatus(StrEnum):
    SUCCESS = "SUCCESS"
    PENDING = "PENDING"


class Direction(StrEnum):
    SEND = "SEND"
    RECEIVE = "RECEIVE"


class Settlement(StrEnum):
    """How money reached the recipient: between Blink wallets, or from a node outside Blink."""

    INTRALEDGER = "intraledger"
    LIGHTNING = "lightning"


class LedgerError(Exception):
    """A refused operation; `code` is the Blink error code a GraphQL client sees."""

    code = "INVALID_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LedgerError):
    code = "NOT_FOUND"


class Conflict(LedgerError):
    """The request is well-formed but the ledger's state forbids it (taken username, paid invoice)."""

    code = "CONFLICT"


class InsufficientBalance(LedgerError):
    code = "INSUFFICIENT_BALANCE"


class InvoiceExpired(Conflict):
    code = "INVOICE_EXPIRED"


class InvoiceAlreadyPaid(Conflict):
    code = "ALREADY_PAID"


class PaymentInFlight(Conflict):
    code = "PAYMENT_IN_TRANSITION"


class SelfPayment(LedgerError):
    code = "CANT_PAY_SELF"


class NoRoute(LedgerError):
    """Only Blink-issued invoices can be paid: the simulator has no Lightning network behind it."""

    code = "ROUTE_FINDING_ERROR"


@dataclass
class Account:
    id: str
    username: str
    created_at: float
    btc_wallet_id: str
    usd_wallet_id: str
    display_currency: str = "USD"
    default_currency: WalletCurrency = WalletCurrency.BTC

    @property
    def default_wallet_id(self) -> str:
        """The wallet Blink answers for the account when no currency is asked for."""
        return self.btc_wallet_id if self.default_currency is WalletCurrency.BTC else self.usd_wallet_id

    @property
    def wallet_ids(self) -> tuple[str, str]:
        return (self.btc_wallet_id, self.usd_wallet_id)


@dataclass
class Wallet:
    id: str
    account_id: str
    currency: WalletCurrency
    balance: int
    funded: int


@dataclass(frozen=True)
class ApiKey:
    key: str
    account_id: str
    scopes: frozenset[Scope]


@dataclass
class Invoice:
    payment_hash: str
    payment_request: str
    payment_secret: str
    preimage: str
    wallet_id: str
    amount: int
    memo: str | None
    external_id: str
    created_at: float
    expires_at: float
    paid_at: float | None = None
    payment_id: str | None = None

    def status(self, now: float) -> InvoiceStatus:
        """PAID once settled; EXPIRED when past expiry and still unpaid; else PENDING."""
        if self.paid_at is not None:
            return InvoiceStatus.PAID
        if now >= self.expires_at:
            return InvoiceStatus.EXPIRED
        return InvoiceStatus.PENDING


@dataclass
class Transaction:
    id: str
    wallet_id: str
    direction: Direction
    amount: int
    status: TxStatus
    created_at: float
    memo: str | None
    payment_hash: str
    payment_request: str
    settlement: Settlement
    external_id: str | None = None
    preimage: str | None = None
    counterparty_wallet_id: str | None = None
    counterparty_username: str | None = None

    @property
    def signed_amount(self) -> int:
        """Blink's settlementAmount: negative for money leaving the wallet."""
        return -self.amount if self.direction is Direction.SEND else self.amount


@dataclass
class Payment:
    """Money moving to settle one invoice; at most one per invoice ever exists."""

    id: str
    payment_hash: str
    amount: int
    recipient_wallet_id: str
    sender_wallet_id: str | None
    status: TxStatus
    created_at: float
    settled_at: float | None = None
    send_tx_id: str | None = None


@dataclass(frozen=True)
class SendAttempt:
    """One lnInvoicePaymentSend call and what it answered, kept so tests can see retries."""

    payment_request: str
    payment_hash: str | None
    sender_wallet_id: str
    result: SendResult
    error_code: str | None
    at: float


@dataclass(frozen=True)
class SendOutcome:
    """Blink's four answers to a payment; `error` is set exactly when the result is FAILURE."""

    result: SendResult
    transaction: Transaction | None = None
    payment: Payment | None = None
    error: LedgerError | None = None


@dataclass(frozen=True)
class LedgerEvent:
    """A transaction committed on a wallet (new, or a pending one now settled)."""

    wallet_id: str
    account_id: str
    transaction: Transaction
    invoice: Invoice


Listener = Callable[[LedgerEvent], None]


@dataclass
class _Totals:
    minted: int = 0
    external_in: int = 0
    external_out: int = 0


class Ledger:
    """All simulator state that holds money; see the module docstring for the guarantees."""

    def __init__(self, seed: int = 0, clock: Callable[[], float] | None = None) -> None:
        self._rng = random.Random(seed)
        self._clock = clock if clock is not None else time.time
        self._accounts: dict[str, Account] = {}
        self._usernames: dict[str, str] = {}
        self._wallets: dict[str, Wallet] = {}
        self._keys: dict[str, ApiKey] = {}
        self._invoices: dict[str, Invoice] = {}
        self._invoices_by_request: dict[str, str] = {}
        self._payments: dict[str, Payment] = {}
        self._transactions: dict[str, list[Transaction]] = {}
        self._attempts: list[SendAttempt] = []
        self._listeners: list[Listener] = []
        self._totals = _Totals()

    def now(self) -> float:
        return self._clock()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # ---- ids -------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _object_id(self) -> str:
        return self._rng.randbytes(12).hex()

    # ---- accounts and keys ----------------------------------------------

    def create_account(
        self, username: str, balance: int = 0, scopes: frozenset[Scope] = ALL_SCOPES
    ) -> tuple[Account, ApiKey]:
        """Open an account with a BTC wallet holding `balance` sats (minted) and an empty USD wallet."""
        if not USERNAME_PATTERN.match(username):
            raise LedgerError("username must be 3-50 letters, digits or underscores")
        if username.lower() in self._usernames:
            raise Conflict(f"username {username} is already taken")
        if not isinstance(balance, int) or balance < 0:
            raise LedgerError("balance must be a non-negative integer of sats")
        account = Account(
            id=self._uuid(), username=username, created_at=self.now(),
            btc_wallet_id=self._uuid(), usd_wallet_id=self._uuid(),
        )
        self._accounts[account.id] = account
        self._usernames[username.lower()] = account.id
        for wallet_id, currency, funded in (
            (account.btc_wallet_id, WalletCurrency.BTC, balance),
            (account.usd_wallet_id, WalletCurrency.USD, 0),
        ):
            self._wallets[wallet_id] = Wallet(wallet_id, account.id, currency, funded, funded)
            self._transactions[wallet_id] = []
        self._totals.minted += balance
        return account, self.issue_api_key(account.id, scopes)

    def issue_api_key(self, account_id: str, scopes: frozenset[Scope] = ALL_SCOPES) -> ApiKey:
        self.account(account_id)
        if not scopes:
            raise LedgerError("an API key needs at least one scope")
        key = "blink_" + "".join(self._rng.choice(API_KEY_ALPHABET) for _ in range(48))
        api_key = ApiKey(key=key, account_id=account_id, scopes=frozenset(scopes))
        self._keys[key] = api_key
        return api_key

    def authenticate(self, key: str) -> ApiKey | None:
        return self._keys.get(key)

    def account(self, account_id: str) -> Account:
        try:
            return self._accounts[account_id]
        except KeyError:
            raise NotFound(f"Account does not exist for id {account_id}") from None

    def account_by_username(self, username: str) -> Account:
        """Usernames are case-insensitive, as on Blink."""
        account_id = self._usernames.get(username.lower())
        if account_id is None:
            raise NotFound(f"Account does not exist for username {username}")
        return self._accounts[account_id]

    def wallet(self, wallet_id: str) -> Wallet:
        try:
            return self._wallets[wallet_id]
        except KeyError:
            raise NotFound(f"Couldn't find wallet for id {wallet_id}") from None

    def wallets(self) -> list[Wallet]:
        return list(self._wallets.values())

    def transactions(self, wallet_id: str) -> list[Transaction]:
        """A wallet's transactions, newest first, as Blink lists them."""
        self.wallet(wallet_id)
        return list(reversed(self._transactions[wallet_id]))

    # ---- invoices --------------------------------------------------------

    def create_invoice(
        self,
        wallet_id: str,
        amount: int,
        memo: str | None = None,
        expires_in_minutes: int | None = None,
        external_id: str | None = None,
    ) -> Invoice:
        """Issue a BTC invoice with a fresh random preimage; its hash is SHA-256 of the preimage."""
        wallet = self.wallet(wallet_id)
        if wallet.currency is not WalletCurrency.BTC:
            raise LedgerError("Invoices in sats can only be created on a BTC wallet")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise LedgerError("amount must be a positive integer of sats")
        if memo is not None and len(memo) > MAX_MEMO_LENGTH:
            raise LedgerError(f"memo is longer than {MAX_MEMO_LENGTH} characters")
        minutes = DEFAULT_EXPIRY_MINUTES if expires_in_minutes is None else expires_in_minutes
        if not isinstance(minutes, int) or minutes <= 0:
            raise LedgerError("expiresIn must be a positive number of minutes")
        preimage = self._rng.randbytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        secret = self._rng.randbytes(32)
        created = self.now()
        request = encode_payment_request(
            amount_sats=amount, payment_hash=payment_hash, payment_secret=secret,
            timestamp=int(created), expiry_seconds=minutes * 60,
            signature=self._rng.randbytes(64) + bytes([self._rng.randrange(4)]), description=memo,
        )
        invoice = Invoice(
            payment_hash=payment_hash.hex(), payment_request=request, payment_secret=secret.hex(),
            preimage=preimage.hex(), wallet_id=wallet_id, amount=amount, memo=memo,
            external_id=external_id or self._object_id(), created_at=created,
            expires_at=created + minutes * 60,
        )
        self._invoices[invoice.payment_hash] = invoice
        self._invoices_by_request[request] = invoice.payment_hash
        return invoice

    def invoice_by_hash(self, payment_hash: str) -> Invoice:
        invoice = self._invoices.get(payment_hash.lower())
        if invoice is None:
            raise NotFound(f"Couldn't find invoice for payment hash {payment_hash}")
        return invoice

    def invoice_by_request(self, payment_request: str) -> Invoice:
        """Find an invoice by its exact payment request, or by the hash it carries."""
        payment_hash = self._invoices_by_request.get(payment_request.strip())
        if payment_hash is None:
            try:
                payment_hash = decode_payment_request(payment_request).payment_hash
            except PaymentRequestError as exc:
                raise LedgerError(f"Invalid paymentRequest: {exc}") from None
        return self.invoice_by_hash(payment_hash)

    def invoices(self) -> list[Invoice]:
        return list(self._invoices.values())

    def invoice_status(self, invoice: Invoice) -> InvoiceStatus:
        return invoice.status(self.now())

    def in_flight(self, invoice: Invoice) -> bool:
        """True while a held (PENDING) payment reserves this invoice."""
        payment = self._payments.get(invoice.payment_id) if invoice.payment_id else None
        return payment is not None and payment.status is TxStatus.PENDING

    # ---- payments ----------------------------------------------------------

    def send_payment(
        self, sender_wallet_id: str, payment_request: str, memo: str | None = None, hold: bool = False
    ) -> SendOutcome:
        """Pay a Blink invoice from a BTC wallet, settling intraledger.

        Answers like Blink: ALREADY_PAID moves nothing; FAILURE carries the reason
        and moves nothing; `hold` debits the sender now, answers PENDING, and
        leaves the credit to `settle_payment`.
        """
        outcome = self._send(sender_wallet_id, payment_request, memo, hold)
        payment_hash = outcome.payment.payment_hash if outcome.payment else _hash_of(payment_request)
        self._attempts.append(SendAttempt(
            payment_request=payment_request, payment_hash=payment_hash,
            sender_wallet_id=sender_wallet_id, result=outcome.result,
            error_code=outcome.error.code if outcome.error else None, at=self.now(),
        ))
        return outcome

    def _send(self, sender_wallet_id: str, payment_request: str, memo: str | None, hold: bool) -> SendOutcome:
        try:
            sender = self.wallet(sender_wallet_id)
            if sender.currency is not WalletCurrency.BTC:
                raise LedgerError("The simulator pays invoices from BTC wallets only")
            try:
                invoice = self.invoice_by_request(payment_request)
            except NotFound:
                raise NoRoute("Unable to find a route for payment.") from None
        except LedgerError as exc:
            return SendOutcome(SendResult.FAILURE, error=exc)
        if invoice.paid_at is not None:
            return SendOutcome(SendResult.ALREADY_PAID)
        if self.in_flight(invoice):
            return SendOutcome(SendResult.PENDING, payment=self._payments[invoice.payment_id or ""])
        if invoice.wallet_id == sender.id:
            return SendOutcome(SendResult.FAILURE, error=SelfPayment("User tried to pay themselves"))
        if self.invoice_status(invoice) is InvoiceStatus.EXPIRED:
            return SendOutcome(SendResult.FAILURE, error=InvoiceExpired("Invoice is expired."))
        if sender.balance < invoice.amount:
            return SendOutcome(SendResult.FAILURE, error=InsufficientBalance(
                f"Payment amount '{invoice.amount}' sats exceeds balance '{sender.balance}'"))
        recipient_account = self.account(self.wallet(invoice.wallet_id).account_id)
        sender_account = self.account(sender.account_id)
        now = self.now()
        payment = Payment(
            id=self._uuid(), payment_hash=invoice.payment_hash, amount=invoice.amount,
            recipient_wallet_id=invoice.wallet_id, sender_wallet_id=sender.id,
            status=TxStatus.PENDING, created_at=now,
        )
        send_tx = Transaction(
            id=self._object_id(), wallet_id=sender.id, direction=Direction.SEND, amount=invoice.amount,
            status=TxStatus.PENDING, created_at=now, memo=memo if memo is not None else invoice.memo,
            payment_hash=invoice.payment_hash, payment_request=invoice.payment_request,
            settlement=Settlement.INTRALEDGER, counterparty_wallet_id=invoice.wallet_id,
            counterparty_username=recipient_account.username,
        )
        sender.balance -= invoice.amount
        payment.send_tx_id = send_tx.id
        invoice.payment_id = payment.id
        self._payments[payment.id] = payment
        self._transactions[sender.id].append(send_tx)
        if hold:
            self._emit(send_tx, invoice, sender_account.id)
            return SendOutcome(SendResult.PENDING, transaction=send_tx, payment=payment)
        self._settle(payment, sender_account.username)
        return SendOutcome(SendResult.SUCCESS, transaction=send_tx, payment=payment)

    def settle_payment(self, payment_id: str) -> Payment:
        """Complete a held payment: the invoice becomes PAID and the recipient is credited."""
        payment = self._payments.get(payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}")
        if payment.status is TxStatus.SUCCESS:
            return payment
        sender_username = None
        if payment.sender_wallet_id is not None:
            sender_username = self.account(self.wallet(payment.sender_wallet_id).account_id).username
        self._settle(payment, sender_username)
        return payment

    def pay_from_outside(self, payment_request: str) -> Payment:
        """A payer outside Blink settles the invoice over Lightning: money enters the ledger."""
        invoice = self.invoice_by_request(payment_request)
        if invoice.paid_at is not None:
            raise InvoiceAlreadyPaid("invoice is already paid")
        if self.in_flight(invoice):
            raise PaymentInFlight("a payment of this invoice is in flight")
        if self.invoice_status(invoice) is InvoiceStatus.EXPIRED:
            raise InvoiceExpired("invoice is expired")
        payment = Payment(
            id=self._uuid(), payment_hash=invoice.payment_hash, amount=invoice.amount,
            recipient_wallet_id=invoice.wallet_id, sender_wallet_id=None,
            status=TxStatus.PENDING, created_at=self.now(),
        )
        invoice.payment_id = payment.id
        self._payments[payment.id] = payment
        self._totals.external_in += invoice.amount
        self._settle(payment, None)
        return payment

    def _settle(self, payment: Payment, sender_username: str | None) -> None:
        invoice = self._invoices[payment.payment_hash]
        recipient = self.wallet(payment.recipient_wallet_id)
        now = self.now()
        internal = payment.sender_wallet_id is not None
        receive_tx = Transaction(
            id=self._object_id(), wallet_id=recipient.id, direction=Direction.RECEIVE,
            amount=payment.amount, status=TxStatus.SUCCESS, created_at=now, memo=invoice.memo,
            payment_hash=invoice.payment_hash, payment_request=invoice.payment_request,
            settlement=Settlement.INTRALEDGER if internal else Settlement.LIGHTNING,
            external_id=invoice.external_id, preimage=invoice.preimage,
            counterparty_wallet_id=payment.sender_wallet_id, counterparty_username=sender_username,
        )
        recipient.balance += payment.amount
        payment.status = TxStatus.SUCCESS
        payment.settled_at = now
        invoice.paid_at = now
        self._transactions[recipient.id].append(receive_tx)
        send_tx = None
        if payment.sender_wallet_id is not None:
            # Newest first: the send was appended moments ago, and a busy sender's history is long.
            sent = reversed(self._transactions[payment.sender_wallet_id])
            send_tx = next(t for t in sent if t.id == payment.send_tx_id)
            send_tx.status = TxStatus.SUCCESS
            send_tx.preimage = invoice.preimage
        self._emit(receive_tx, invoice, recipient.account_id)
        if send_tx is not None:
            self._emit(send_tx, invoice, self.wallet(send_tx.wallet_id).account_id)

    def _emit(self, transaction: Transaction, invoice: Invoice, account_id: str) -> None:
        """Tell listeners, only after every change of the operation is made.

        The event carries a copy: a held payment's transaction changes when it
        settles, and a queued PENDING event must still say PENDING.
        """
        event = LedgerEvent(transaction.wallet_id, account_id, dataclasses.replace(transaction), invoice)
        for listener in self._listeners:
            listener(event)

    # ---- audit ---------------------------------------------------------------

    def in_flight_total(self) -> int:
        return sum(p.amount for p in self._payments.values() if p.status is TxStatus.PENDING)

    def audit(self) -> list[str]:
        """Every broken invariant, in words; an empty list means the books balance."""
        problems: list[str] = []
        btc = [w for w in self._wallets.values() if w.currency is WalletCurrency.BTC]
        held = sum(w.balance for w in btc) + self.in_flight_total()
        expected = self._totals.minted + self._totals.external_in - self._totals.external_out
        if held != expected:
            problems.append(f"balances plus in-flight {held} != minted + inflow - outflow {expected}")
        for wallet in self._wallets.values():
            if wallet.balance < 0:
                problems.append(f"wallet {wallet.id} is negative: {wallet.balance}")
            from_txs = wallet.funded + sum(t.signed_amount for t in self._transactions[wallet.id])
            if from_txs != wallet.balance:
                problems.append(f"wallet {wallet.id} balance {wallet.balance} != its transactions {from_txs}")
        per_hash: dict[str, int] = {}
        for payment in self._payments.values():
            per_hash[payment.payment_hash] = per_hash.get(payment.payment_hash, 0) + 1
        problems += [f"invoice {h} paid {n} times" for h, n in per_hash.items() if n > 1]
        for invoice in self._invoices.values():
            settled = invoice.payment_id is not None and self._payments[invoice.payment_id].status is TxStatus.SUCCESS
            if settled != (invoice.paid_at is not None):
                problems.append(f"invoice {invoice.payment_hash} PAID flag disagrees with its payment")
        return problems

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view of the whole ledger (API keys left out) for invariant checks."""
        now = self.now()
        return {
            "now": now,
            "accounts": [
                {"accountId": a.id, "username": a.username, "btcWalletId": a.btc_wallet_id,
                 "usdWalletId": a.usd_wallet_id}
                for a in self._accounts.values()
            ],
            "wallets": [
                {"walletId": w.id, "accountId": w.account_id, "currency": w.currency.value,
                 "balance": w.balance, "funded": w.funded}
                for w in self._wallets.values()
            ],
            "invoices": [
                {"paymentHash": i.payment_hash, "paymentRequest": i.payment_request, "walletId": i.wallet_id,
                 "amount": i.amount, "memo": i.memo, "externalId": i.external_id,
                 "status": i.status(now).value, "inFlight": self.in_flight(i), "createdAt": i.created_at,
                 "expiresAt": i.expires_at, "paidAt": i.paid_at, "paymentId": i.payment_id}
                for i in self._invoices.values()
            ],
            "payments": [
                {"paymentId": p.id, "paymentHash": p.payment_hash, "amount": p.amount,
                 "senderWalletId": p.sender_wallet_id, "recipientWalletId": p.recipient_wallet_id,
                 "status": p.status.value, "createdAt": p.created_at, "settledAt": p.settled_at}
                for p in self._payments.values()
            ],
            "sendAttempts": [
                {"paymentHash": a.payment_hash, "senderWalletId": a.sender_wallet_id,
                 "result": a.result.value, "errorCode": a.error_code, "at": a.at}
                for a in self._attempts
            ],
            "totals": {
                "minted": self._totals.minted,
                "externalIn": self._totals.external_in,
                "externalOut": self._totals.external_out,
                "inFlight": self.in_flight_total(),
                "btcBalances": sum(w.balance for w in self._wallets.values() if w.currency is WalletCurrency.BTC),
            },
            "violations": self.audit(),
        }


def _hash_of(payment_request: str) -> str | None:
    try:
        return decode_payment_request(payment_request).payment_hash
    except PaymentRequestError:
        return None
