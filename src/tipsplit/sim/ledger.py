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

MAX_MEMO_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,50}$")
EXTERNAL_ID_PATTERN = re.compile(r"^[a-z0-9_-]{1,100}$")
"""Blink's checkedToLedgerExternalId (domain/ledger/validation.ts): lower case, digits, '_' and '-'."""
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
    FAILURE = "FAILURE"


class Direction(StrEnum):
    SEND = "SEND"
    RECEIVE = "RECEIVE"


class Settlement(StrEnum):
    """How money reached the recipient: between Blink wallets, or from a node outside Blink."""

    INTRALEDGER = "intraledger"
    LIGHTNING = "lightning"


@dataclass(frozen=True)
class ExpiryRule:
    """Blink's INVOICE_EXPIRATIONS (domain/bitcoin/lightning/invoice-expiration.ts), in seconds."""

    minimum: int
    maximum: int
    default: int


INVOICE_EXPIRY = {
    "BTC": ExpiryRule(minimum=60, maximum=24 * 3600, default=4 * 3600),
    "USD": ExpiryRule(minimum=60, maximum=5 * 60, default=5 * 60),
}


def invoice_expiry_seconds(currency: str, minutes: int | None) -> int:
    """`expiresIn || default`, and any delay outside [minimum, maximum] replaced by the default, as Blink does."""
    rule = INVOICE_EXPIRY[currency]
    seconds = minutes * 60 if minutes else rule.default
    return seconds if rule.minimum <= seconds <= rule.maximum else rule.default


UNEXPECTED_ERROR = "Unexpected error occurred, please try again or contact support if it persists (code: {})"


class LedgerError(Exception):
    """A refused operation; `code` is the Blink error code a GraphQL client sees."""

    code = "INVALID_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LedgerError):
    code = "NOT_FOUND"


class BlinkUnexpected(LedgerError):
    """An error Blink's error map does not name, answered as its `UnexpectedClientError` words it."""

    code = "UNEXPECTED_CLIENT_ERROR"

    def __init__(self, error_name: str, detail: str = "Unknown error") -> None:
        super().__init__(UNEXPECTED_ERROR.format(f"{error_name}: {detail}"))


def unknown_wallet() -> BlinkUnexpected:
    """Blink's CouldNotFindWalletFromIdError, which its error map leaves unnamed."""
    return BlinkUnexpected("CouldNotFindWalletFromIdError")


class MismatchedCurrency(LedgerError):
    def __init__(self) -> None:
        super().__init__("Unsupported operation for wallet's currency.")


class InvalidAmount(LedgerError):
    def __init__(self, currency: "WalletCurrency") -> None:
        super().__init__("A valid satoshi amount is required" if currency == "BTC" else "A valid usd amount is required")


class SubOneCent(LedgerError):
    def __init__(self) -> None:
        super().__init__("Amount sent was too low for recipient's usd wallet.")


class InvoiceDecodeFailed(LedgerError):
    code = "INVOICE_DECODE_ERROR"


class ExpiredInvoicePayment(LedgerError):
    """What a payer sees when the destination refuses an expired invoice (InvoiceExpiredOrBadPaymentHashError)."""

    code = "LIGHTNING_PAYMENT_ERROR"

    def __init__(self) -> None:
        super().__init__("Invoice already expired, or has bad payment hash")


class UsdSenderUnsupported(LedgerError):
    """Blink pays invoices from USD wallets through its dealer; the simulator does not model that."""

    code = "NOT_IMPLEMENTED"

    def __init__(self) -> None:
        super().__init__("The simulator does not support paying from a USD wallet")


class NoAmount(LedgerError):
    def __init__(self) -> None:
        super().__init__("Invoice does not have a valid amount to pay")


class Conflict(LedgerError):
    """The request is well-formed but the ledger's state forbids it (taken username, paid invoice)."""

    code = "CONFLICT"


class InvalidExternalId(LedgerError):
    """Blink's InvalidLedgerExternalId, as error-map.ts words it."""

    def __init__(self) -> None:
        super().__init__(
            "Invalid external id string passed. ID should be either alphanumeric or contain the characters "
            "'_' or '-'. It should not be more than 100 characters long as well."
        )


class DuplicateExternalId(LedgerError):
    """Blink's DuplicateLedgerExternalIdError: the account already has an invoice with this externalId."""

    def __init__(self) -> None:
        super().__init__("External id for invoice or transaction already exists")


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
    usd_cents: int | None = None
    """For an invoice of a USD wallet: the cents it credits, fixed at creation as Blink's dealer quote is."""

    def status(self, now: float) -> InvoiceStatus:
        """PAID once settled; EXPIRED when past expiry and still unpaid; else PENDING.

        This is Blink's rule (PaymentStatusChecker and WalletInvoiceStatusChecker in
        core/api): PAID means the payment is recorded in the ledger, else the
        invoice's expiry decides. A payment held in flight records nothing yet, so
        past expiry Blink already answers EXPIRED while the invoice still cannot be
        paid by anyone else, and answers PAID once the held payment settles.
        """
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
    payment_hash: str | None
    payment_request: str | None
    settlement: Settlement
    currency: WalletCurrency = WalletCurrency.BTC
    """The unit of `amount`: sats on a BTC wallet, cents on a USD wallet."""
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
    held: bool = False


@dataclass(frozen=True)
class LedgerEvent:
    """A transaction committed on a wallet (new, or a pending one now settled)."""

    wallet_id: str
    account_id: str
    transaction: Transaction
    invoice: Invoice | None
    """None for a payment to a wallet id (intraLedgerPaymentSend), which settles no invoice."""


Listener = Callable[[LedgerEvent], None]


@dataclass
class _Totals:
    minted: int = 0
    external_in: int = 0
    external_out: int = 0
    dealer_sats: int = 0
    """Sats that bought USD: paid into USD wallets, whose owners hold cents instead."""
    usd_issued: int = 0
    """Cents credited to USD wallets."""


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
        self._external_ids: set[tuple[str, str]] = set()
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

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

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
        usd_cents: int | None = None,
    ) -> Invoice:
        """Issue an invoice of `amount` sats with a fresh random preimage; its hash is SHA-256 of the preimage.

        An invoice of a USD wallet also says the cents it credits (`usd_cents`);
        its expiry follows Blink's USD rules (at most five minutes).
        """
        wallet = self.wallet(wallet_id)
        if (wallet.currency is WalletCurrency.USD) != (usd_cents is not None):
            raise MismatchedCurrency()
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise InvalidAmount(WalletCurrency.BTC)
        if usd_cents is not None and usd_cents <= 0:
            raise SubOneCent()
        if memo is not None and len(memo) > MAX_MEMO_LENGTH:
            raise LedgerError(f"memo is longer than {MAX_MEMO_LENGTH} characters")
        if external_id is not None and not EXTERNAL_ID_PATTERN.match(external_id):
            raise InvalidExternalId()
        expiry = invoice_expiry_seconds(wallet.currency.value, expires_in_minutes)
        preimage = self._rng.randbytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        secret = self._rng.randbytes(32)
        created = self.now()
        request = encode_payment_request(
            amount_sats=amount, payment_hash=payment_hash, payment_secret=secret,
            timestamp=int(created), expiry_seconds=expiry,
            signature=self._rng.randbytes(64) + bytes([self._rng.randrange(4)]), description=memo,
        )
        invoice = Invoice(
            payment_hash=payment_hash.hex(), payment_request=request, payment_secret=secret.hex(),
            preimage=preimage.hex(), wallet_id=wallet_id, amount=amount, memo=memo,
            external_id=external_id or payment_hash.hex(), created_at=created,
            expires_at=created + expiry, usd_cents=usd_cents,
        )
        key = (wallet.account_id, invoice.external_id)
        if key in self._external_ids:
            raise DuplicateExternalId()
        self._external_ids.add(key)
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
                raise _decode_failure(exc) from None
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
        self, sender_wallet_id: str, payment_request: str, memo: str | None = None, hold: bool = False,
        fail: bool = False,
    ) -> SendOutcome:
        """Pay a Blink invoice from a BTC wallet, settling intraledger.

        Answers like Blink: ALREADY_PAID moves nothing; FAILURE carries the reason
        and moves nothing; `hold` debits the sender now, answers PENDING, and
        leaves the credit to `settle_payment`; `fail` makes the payment fail in the
        network after the debit, which Blink reverts (see `_fail`).
        """
        outcome = self._send(sender_wallet_id, payment_request, memo, hold, fail)
        payment_hash = outcome.payment.payment_hash if outcome.payment else _hash_of(payment_request)
        self._attempts.append(SendAttempt(
            payment_request=payment_request, payment_hash=payment_hash,
            sender_wallet_id=sender_wallet_id, result=outcome.result,
            error_code=outcome.error.code if outcome.error else None, at=self.now(),
        ))
        return outcome

    def _send(
        self, sender_wallet_id: str, payment_request: str, memo: str | None, hold: bool, fail: bool
    ) -> SendOutcome:
        # A request this ledger issued, as issued, says its invoice's hash and amount: no need to decode it.
        issued = self._invoices_by_request.get(payment_request)
        amount_sats: int | None
        if issued is not None:
            payment_hash, amount_sats = issued, self._invoices[issued].amount
        else:
            try:
                decoded = decode_payment_request(payment_request)
            except PaymentRequestError as exc:
                return SendOutcome(SendResult.FAILURE, error=_decode_failure(exc))
            payment_hash, amount_sats = decoded.payment_hash, decoded.amount_sats
        try:
            sender = self.wallet(sender_wallet_id)
        except NotFound:
            return SendOutcome(SendResult.FAILURE, error=unknown_wallet())
        if sender.currency is not WalletCurrency.BTC:
            raise UsdSenderUnsupported()
        if not amount_sats:
            return SendOutcome(SendResult.FAILURE, error=NoAmount())
        invoice = self._invoices.get(payment_hash)
        if invoice is None:
            return self._unroutable(sender, payment_hash, payment_request, amount_sats, memo)
        if invoice.paid_at is not None:
            return SendOutcome(SendResult.ALREADY_PAID, transaction=self._sent_for(sender.id, invoice.payment_hash))
        if self.in_flight(invoice):
            return SendOutcome(SendResult.PENDING, transaction=self._sent_for(sender.id, invoice.payment_hash),
                               payment=self._payments[invoice.payment_id or ""])
        if invoice.wallet_id == sender.id:
            return SendOutcome(SendResult.FAILURE, error=SelfPayment("User tried to pay themselves"))
        if self.invoice_status(invoice) is InvoiceStatus.EXPIRED:
            return SendOutcome(SendResult.FAILURE, error=ExpiredInvoicePayment())
        if sender.balance < invoice.amount:
            return SendOutcome(SendResult.FAILURE, error=_insufficient(invoice.amount, sender.balance))
        if fail:
            return self._fail(sender, invoice.payment_hash, invoice.payment_request, invoice.amount, memo or invoice.memo)
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
            settlement=Settlement.INTRALEDGER, external_id=invoice.external_id,
            counterparty_wallet_id=invoice.wallet_id, counterparty_username=recipient_account.username,
        )
        sender.balance -= invoice.amount
        payment.send_tx_id = send_tx.id
        invoice.payment_id = payment.id
        self._payments[payment.id] = payment
        self._transactions[sender.id].append(send_tx)
        if hold:
            self._emit(send_tx, invoice, sender_account.id)
            return SendOutcome(SendResult.PENDING, transaction=send_tx, payment=payment, held=True)
        self._settle(payment, sender_account.username)
        return SendOutcome(SendResult.SUCCESS, transaction=send_tx, payment=payment)

    def _sent_for(self, wallet_id: str, payment_hash: str) -> Transaction | None:
        """What Blink returns beside ALREADY_PAID / PENDING: the wallet's send for the hash, else its first match."""
        matches = [t for t in self.transactions(wallet_id) if t.payment_hash == payment_hash]
        return next((t for t in matches if t.direction is Direction.SEND), matches[0] if matches else None)

    def _unroutable(
        self, sender: Wallet, payment_hash: str, payment_request: str, amount: int, memo: str | None
    ) -> SendOutcome:
        """An invoice no Blink wallet issued goes out over Lightning, where the simulator has no route."""
        if sender.balance < amount:
            return SendOutcome(SendResult.FAILURE, error=_insufficient(amount, sender.balance))
        return self._fail(sender, payment_hash, payment_request.strip(), amount, memo)

    def _fail(self, sender: Wallet, payment_hash: str, payment_request: str, amount: int, memo: str | None) -> SendOutcome:
        """A Lightning send that fails after Blink recorded it: Blink voids the debit with a reversal entry
        and marks both FAILURE (recordLnSendRevert, updateLnPaymentState), so the wallet lists both."""
        now = self.now()
        common: dict[str, Any] = {
            "wallet_id": sender.id, "amount": amount, "status": TxStatus.FAILURE, "created_at": now, "memo": memo,
            "payment_hash": payment_hash, "payment_request": payment_request, "settlement": Settlement.LIGHTNING,
        }
        debit = Transaction(id=self._object_id(), direction=Direction.SEND, **common)
        reversal = Transaction(id=self._object_id(), direction=Direction.RECEIVE, **common)
        self._transactions[sender.id] += [debit, reversal]
        return SendOutcome(SendResult.FAILURE, error=NoRoute("Unable to find a route for payment."))

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
        credit = self._credit(recipient, payment.amount, invoice.usd_cents)
        receive_tx = Transaction(
            id=self._object_id(), wallet_id=recipient.id, direction=Direction.RECEIVE,
            amount=credit, status=TxStatus.SUCCESS, created_at=now, memo=invoice.memo,
            payment_hash=invoice.payment_hash, payment_request=invoice.payment_request,
            settlement=Settlement.INTRALEDGER if internal else Settlement.LIGHTNING, currency=recipient.currency,
            external_id=invoice.external_id, preimage=invoice.preimage,
            counterparty_wallet_id=payment.sender_wallet_id, counterparty_username=sender_username,
        )
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

    def _credit(self, recipient: Wallet, sats: int, usd_cents: int | None) -> int:
        """Credit a wallet in its own unit; sats paid into a USD wallet go to the dealer, who issues the cents."""
        if recipient.currency is WalletCurrency.USD:
            cents = usd_cents or 0
            self._totals.dealer_sats += sats
            self._totals.usd_issued += cents
            recipient.balance += cents
            return cents
        recipient.balance += sats
        return sats

    def transfer(
        self, sender_wallet_id: str, recipient_wallet_id: str, sats: int, memo: str | None = None,
        usd_cents: int | None = None,
    ) -> Transaction:
        """intraLedgerPaymentSend: move sats from a BTC wallet to any wallet id, no invoice involved.

        A USD recipient is credited `usd_cents` (the caller's conversion at the current price).
        Refusals follow Blink: unknown recipient, paying one's own wallet, a non-positive
        amount, a sub-cent credit, or too small a balance.
        """
        try:
            sender, recipient = self.wallet(sender_wallet_id), self.wallet(recipient_wallet_id)
        except NotFound:
            raise unknown_wallet() from None
        if sender.currency is not WalletCurrency.BTC:
            raise MismatchedCurrency()
        if not isinstance(sats, int) or isinstance(sats, bool) or sats <= 0:
            raise InvalidAmount(WalletCurrency.BTC)
        if recipient.id == sender.id:
            raise SelfPayment("User tried to pay themselves")
        if recipient.currency is WalletCurrency.USD and not usd_cents:
            raise SubOneCent()
        if sender.balance < sats:
            raise _insufficient(sats, sender.balance)
        sender_account = self.account(sender.account_id)
        recipient_account = self.account(recipient.account_id)
        now = self.now()
        sender.balance -= sats
        credit = self._credit(recipient, sats, usd_cents)
        common: dict[str, Any] = {
            "status": TxStatus.SUCCESS, "created_at": now, "memo": memo, "payment_hash": None,
            "payment_request": None, "settlement": Settlement.INTRALEDGER,
        }
        send_tx = Transaction(
            id=self._object_id(), wallet_id=sender.id, direction=Direction.SEND, amount=sats,
            counterparty_wallet_id=recipient.id, counterparty_username=recipient_account.username, **common,
        )
        receive_tx = Transaction(
            id=self._object_id(), wallet_id=recipient.id, direction=Direction.RECEIVE, amount=credit,
            currency=recipient.currency, counterparty_wallet_id=sender.id,
            counterparty_username=sender_account.username, **common,
        )
        self._transactions[sender.id].append(send_tx)
        self._transactions[recipient.id].append(receive_tx)
        self._emit(receive_tx, None, recipient_account.id)
        self._emit(send_tx, None, sender_account.id)
        return send_tx

    def _emit(self, transaction: Transaction, invoice: Invoice | None, account_id: str) -> None:
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
        held = sum(w.balance for w in btc) + self.in_flight_total() + self._totals.dealer_sats
        expected = self._totals.minted + self._totals.external_in - self._totals.external_out
        if held != expected:
            problems.append(f"balances plus in-flight plus dealer {held} != minted + inflow - outflow {expected}")
        cents = sum(w.balance for w in self._wallets.values() if w.currency is WalletCurrency.USD)
        if cents != self._totals.usd_issued:
            problems.append(f"USD balances {cents} != cents issued {self._totals.usd_issued}")
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
                 "amount": i.amount, "usdCents": i.usd_cents, "memo": i.memo, "externalId": i.external_id,
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
                "dealerSats": self._totals.dealer_sats,
                "usdIssued": self._totals.usd_issued,
                "btcBalances": sum(w.balance for w in self._wallets.values() if w.currency is WalletCurrency.BTC),
            },
            "violations": self.audit(),
        }


def _decode_failure(exc: PaymentRequestError) -> InvoiceDecodeFailed:
    """Blink's decode errors, by what the decoder tripped on."""
    reason = str(exc)
    if "checksum" in reason:
        return InvoiceDecodeFailed("Invoice has an invalid checksum, please check again")
    if "character" in reason:
        return InvoiceDecodeFailed("Invoice has an unknown character, couldn't decode.")
    return InvoiceDecodeFailed("Invalid lightning request, couldn't decode.")


def _insufficient(amount: int, balance: int) -> InsufficientBalance:
    return InsufficientBalance(f"Payment amount '{amount}' sats exceeds balance '{balance}'")


def _hash_of(payment_request: str) -> str | None:
    try:
        return decode_payment_request(payment_request).payment_hash
    except PaymentRequestError:
        return None
