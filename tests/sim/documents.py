"""Raw GraphQL documents the simulator tests send, as a Blink client would write them."""

ME = """
query Me {
  me {
    id
    username
    defaultAccount {
      id
      defaultWalletId
      wallets { id walletCurrency balance }
    }
  }
}
"""

ACCOUNT_DEFAULT_WALLET = """
query AccountDefaultWallet($username: Username!, $walletCurrency: WalletCurrency) {
  accountDefaultWallet(username: $username, walletCurrency: $walletCurrency) { id walletCurrency currency }
}
"""

LN_INVOICE_CREATE = """
mutation LnInvoiceCreate($input: LnInvoiceCreateInput!) {
  lnInvoiceCreate(input: $input) {
    errors { message code path }
    invoice { paymentRequest paymentHash paymentSecret satoshis paymentStatus createdAt externalId }
  }
}
"""

LN_INVOICE_CREATE_ON_BEHALF = """
mutation LnInvoiceCreateOnBehalfOfRecipient($input: LnInvoiceCreateOnBehalfOfRecipientInput!) {
  lnInvoiceCreateOnBehalfOfRecipient(input: $input) {
    errors { message code }
    invoice { paymentRequest paymentHash satoshis paymentStatus externalId }
  }
}
"""

LN_INVOICE_PAYMENT_SEND = """
mutation LnInvoicePaymentSend($input: LnInvoicePaymentInput!) {
  lnInvoicePaymentSend(input: $input) {
    status
    errors { message code path }
    transaction {
      id direction status settlementAmount settlementCurrency memo
      initiationVia { ... on InitiationViaLn { paymentHash paymentRequest } }
      settlementVia {
        __typename
        ... on SettlementViaIntraLedger { counterPartyWalletId counterPartyUsername preImage }
      }
    }
  }
}
"""

LN_USD_INVOICE_CREATE = """
mutation LnUsdInvoiceCreate($input: LnUsdInvoiceCreateInput!) {
  lnUsdInvoiceCreate(input: $input) {
    errors { message code }
    invoice { paymentRequest paymentHash satoshis paymentStatus externalId }
  }
}
"""

LN_USD_INVOICE_CREATE_ON_BEHALF = """
mutation LnUsdInvoiceCreateOnBehalfOfRecipient($input: LnUsdInvoiceCreateOnBehalfOfRecipientInput!) {
  lnUsdInvoiceCreateOnBehalfOfRecipient(input: $input) {
    errors { message code }
    invoice { paymentRequest paymentHash satoshis paymentStatus externalId }
  }
}
"""

LN_USD_INVOICE_BTC_DENOMINATED_ON_BEHALF = """
mutation LnUsdInvoiceBtcDenominated($input: LnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipientInput!) {
  lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient(input: $input) {
    errors { message code }
    invoice { paymentRequest paymentHash satoshis paymentStatus externalId }
  }
}
"""

INTRALEDGER_PAYMENT_SEND = """
mutation IntraLedgerPaymentSend($input: IntraLedgerPaymentSendInput!) {
  intraLedgerPaymentSend(input: $input) {
    status
    errors { message code }
    transaction {
      id direction status settlementAmount settlementCurrency memo
      initiationVia { __typename ... on InitiationViaIntraLedger { counterPartyWalletId counterPartyUsername } }
    }
  }
}
"""

CSV_TRANSACTIONS = """
query CsvTransactions($walletIds: [WalletId!]!) {
  me { defaultAccount { csvTransactions(walletIds: $walletIds) } }
}
"""

STATUS_BY_HASH = """
query LnInvoicePaymentStatusByHash($input: LnInvoicePaymentStatusByHashInput!) {
  lnInvoicePaymentStatusByHash(input: $input) { paymentHash paymentRequest paymentPreimage status }
}
"""

STATUS_BY_REQUEST = """
query LnInvoicePaymentStatusByPaymentRequest($input: LnInvoicePaymentStatusByPaymentRequestInput!) {
  lnInvoicePaymentStatusByPaymentRequest(input: $input) { paymentHash paymentPreimage status }
}
"""

REALTIME_PRICE = """
query RealtimePrice($currency: DisplayCurrency) {
  realtimePrice(currency: $currency) {
    id timestamp denominatorCurrency
    denominatorCurrencyDetails { id symbol fractionDigits name }
    btcSatPrice { base offset }
    usdCentPrice { base offset }
  }
}
"""

WALLET_TRANSACTIONS = """
query WalletTransactions($walletId: WalletId!, $hash: PaymentHash!) {
  me {
    defaultAccount {
      walletById(walletId: $walletId) {
        id balance
        transactions(first: 10) { edges { cursor node { id direction settlementAmount status } } pageInfo { hasNextPage } }
        transactionsByPaymentHash(paymentHash: $hash) { id direction settlementAmount }
        invoiceByPaymentHash(paymentHash: $hash) { paymentHash paymentStatus }
      }
    }
  }
}
"""

TRANSACTIONS_BY_HASH = """
query TransactionsByHash($walletId: WalletId!, $hash: PaymentHash!) {
  me {
    defaultAccount {
      walletById(walletId: $walletId) {
        transactionsByPaymentHash(paymentHash: $hash) {
          id direction status settlementAmount externalId
          initiationVia { ... on InitiationViaLn { paymentHash } }
        }
      }
    }
  }
}
"""

MY_UPDATES = """
subscription MyUpdates {
  myUpdates {
    errors { message code }
    me { id username }
    update {
      __typename
      ... on RealtimePrice { btcSatPrice { base offset } }
      ... on LnUpdate { paymentHash status walletId transaction { id direction settlementAmount status } }
      ... on IntraLedgerUpdate { txNotificationType walletId transaction { id direction settlementAmount status } }
    }
  }
}
"""

STATUS_SUBSCRIPTION = """
subscription PaymentStatus($input: LnInvoicePaymentStatusByHashInput!) {
  lnInvoicePaymentStatusByHash(input: $input) { errors { message } paymentHash status paymentPreimage }
}
"""

ALL = [
    ME, ACCOUNT_DEFAULT_WALLET, LN_INVOICE_CREATE, LN_INVOICE_CREATE_ON_BEHALF, LN_INVOICE_PAYMENT_SEND,
    LN_USD_INVOICE_CREATE, LN_USD_INVOICE_CREATE_ON_BEHALF, LN_USD_INVOICE_BTC_DENOMINATED_ON_BEHALF,
    INTRALEDGER_PAYMENT_SEND, CSV_TRANSACTIONS,
    STATUS_BY_HASH, STATUS_BY_REQUEST, REALTIME_PRICE, WALLET_TRANSACTIONS, TRANSACTIONS_BY_HASH, MY_UPDATES, STATUS_SUBSCRIPTION,
]
