"""Who may run which root field, checked in the order Blink's public server checks it.

Blink (core/api/src/servers/graphql-public-api-server.ts) wraps its schema in three
middlewares, outermost first: graphql-shield (an authed field needs an account, else
"Not authorized"), the walletId middleware (a wallet-level field's `walletId` must be the
account's), and the scope middleware (servers/middlewares/scope.ts: reads need READ,
account- and send-level mutations need WRITE, receive-level mutations need RECEIVE or
WRITE). Which field is which comes from `queryFields` and `mutationFields` in
graphql/public/{queries,mutations}.ts. Subscriptions have no such rules; `myUpdates`
only asks for an account.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from graphql import GraphQLError

from tipsplit.sim.ledger import UNEXPECTED_ERROR, ApiKey, Ledger, NotFound, Scope
from tipsplit.sim.scalars import Refused


class Level(Enum):
    PUBLIC = "public"
    ACCOUNT = "account"
    WALLET_SEND = "wallet-send"
    WALLET_RECEIVE = "wallet-receive"
    WALLET_READ = "wallet-read"


QUERIES: dict[str, Level] = {
    **dict.fromkeys((
        "globals", "usernameAvailable", "userDefaultWalletId", "accountDefaultWallet", "businessMapMarkers",
        "currencyList", "payoutSpeeds", "mobileVersions", "realtimePrice", "currencyConversionEstimation",
        "btcPriceList", "lnInvoicePaymentStatus", "lnInvoicePaymentStatusByHash",
        "lnInvoicePaymentStatusByPaymentRequest", "regionCheck",
    ), Level.PUBLIC),
    **dict.fromkeys(("authorization", "me", "windDown", "migration", "custodialRestrictions"), Level.ACCOUNT),
    **dict.fromkeys(("onChainTxFee", "onChainUsdTxFee", "onChainUsdTxFeeAsBtcDenominated"), Level.WALLET_READ),
}

MUTATIONS: dict[str, Level] = {
    **dict.fromkeys((
        "captchaCreateChallenge", "captchaRequestAuthCode", "userLogin", "lnInvoiceCreateOnBehalfOfRecipient",
        "lnUsdInvoiceCreateOnBehalfOfRecipient", "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient",
        "lnNoAmountInvoiceCreateOnBehalfOfRecipient", "merchantMapSuggest",
    ), Level.PUBLIC),
    **dict.fromkeys((
        "userLoginUpgrade", "userLoginUpgradeTelegram", "userEmailRegistrationInitiate",
        "userEmailRegistrationValidate", "userEmailDelete", "userPhoneRegistrationInitiate",
        "userPhoneRegistrationValidate", "userPhoneDelete", "userTotpRegistrationInitiate",
        "userTotpRegistrationValidate", "userTotpDelete", "userLogout", "quizClaim", "deviceNotificationTokenCreate",
        "supportChatMessageAdd", "supportChatReset", "userUpdateLanguage", "userUpdateUsername",
        "userContactUpdateAlias", "accountUpdateDefaultWalletId", "accountUpdateDisplayCurrency", "contactCreate",
        "accountEnableNotificationCategory", "accountDisableNotificationCategory",
        "accountEnableNotificationChannel", "accountDisableNotificationChannel", "accountDelete", "feedbackSubmit",
        "migrationStart", "migrationCommit", "migrationLnAddressTransfer", "callbackEndpointAdd",
        "callbackEndpointDelete",
    ), Level.ACCOUNT),
    **dict.fromkeys((
        "intraLedgerPaymentSend", "intraLedgerUsdPaymentSend", "lnAddressPaymentSend", "lnurlPaymentSend",
        "lnInvoiceFeeProbe", "lnUsdInvoiceFeeProbe", "lnNoAmountInvoiceFeeProbe", "lnNoAmountUsdInvoiceFeeProbe",
        "lnInvoicePaymentSend", "lnNoAmountInvoicePaymentSend", "lnNoAmountUsdInvoicePaymentSend",
        "onChainPaymentSend", "onChainUsdPaymentSend", "onChainUsdPaymentSendAsBtcDenominated",
        "onChainPaymentSendAll",
    ), Level.WALLET_SEND),
    **dict.fromkeys((
        "lnInvoiceCreate", "lnUsdInvoiceCreate", "lnNoAmountInvoiceCreate", "lnInvoiceCancel",
        "onChainAddressCreate", "onChainAddressCurrent",
    ), Level.WALLET_RECEIVE),
}

READ_REFUSED = "not authorized to read data"
WRITE_REFUSED = "not authorized to execute mutations"


def not_authorized() -> GraphQLError:
    """graphql-shield's fallback for an authed field without an account (graphql/error.ts AuthorizationError)."""
    return GraphQLError("Not authorized", extensions={"code": "NOT_AUTHORIZED"})


def not_authenticated_for_subscription() -> GraphQLError:
    return GraphQLError("Not Authenticated for subscription", extensions={"code": "NOT_AUTHENTICATED"})


def unexpected(error_name: str, detail: str = "Unknown error") -> GraphQLError:
    """A domain error Blink's error map leaves unnamed (UnexpectedClientError)."""
    return GraphQLError(UNEXPECTED_ERROR.format(f"{error_name}: {detail}"),
                        extensions={"code": "UNEXPECTED_CLIENT_ERROR"})


@dataclass(frozen=True)
class Refusal:
    """Why a root field may not run: raised as a GraphQL error, or (mutations' walletId) put in the payload."""

    error: GraphQLError
    in_payload: bool = False


def level_of(operation: str, field: str) -> Level:
    table = QUERIES if operation == "Query" else MUTATIONS
    return table[field]


def check(operation: str, field: str, args: dict[str, Any], key: ApiKey | None, ledger: Ledger) -> Refusal | None:
    """Blink's shield, walletId and scope middlewares for one root field, in that order."""
    level = level_of(operation, field)
    if level is Level.PUBLIC:
        return None
    if key is None:
        return Refusal(not_authorized())
    if level in (Level.WALLET_SEND, Level.WALLET_RECEIVE, Level.WALLET_READ):
        refused = _wallet_refusal(args, key, ledger)
        if refused is not None:
            return Refusal(refused, in_payload=operation == "Mutation")
    needed = _scopes_needed(operation, level)
    if key.scopes & needed:
        return None
    reason = READ_REFUSED if operation == "Query" else WRITE_REFUSED
    return Refusal(unexpected("AuthorizationError", reason))


def _scopes_needed(operation: str, level: Level) -> frozenset[Scope]:
    if operation == "Query":
        return frozenset({Scope.READ})
    if level is Level.WALLET_RECEIVE:
        return frozenset({Scope.RECEIVE, Scope.WRITE})
    return frozenset({Scope.WRITE})


def _wallet_refusal(args: dict[str, Any], key: ApiKey, ledger: Ledger) -> GraphQLError | None:
    """The walletId middleware: the field's `walletId` (in `input`, or an argument) must belong to the account."""
    source: dict[str, Any] = args["input"] if isinstance(args.get("input"), dict) else args
    wallet_id = source.get("walletId")
    if not wallet_id:
        return GraphQLError("Invalid walletId for account.", extensions={"code": "INVALID_INPUT"})
    if isinstance(wallet_id, Refused):
        return GraphQLError(wallet_id.message, extensions={"code": wallet_id.code})
    try:
        wallet = ledger.wallet(wallet_id)
    except NotFound:
        return unexpected("CouldNotFindWalletFromIdError")
    if wallet.account_id != key.account_id:
        return unexpected("InvalidWalletForAccountError")
    return None
