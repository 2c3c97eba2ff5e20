"""Every operation we send must be valid against Blink's public schema."""

import pytest
from graphql import OperationDefinitionNode, parse, validate

from tipsplit.blink.documents import document, operation_names
from tipsplit.blink.schema import blink_schema

EXPECTED_OPERATIONS = {
    "accountDefaultWallet",
    "authorization",
    "lnInvoiceCreate",
    "lnInvoiceCreateOnBehalfOfRecipient",
    "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient",
    "lnInvoicePaymentSend",
    "lnInvoicePaymentStatusByHash",
    "walletSendsByPaymentHash",
    "me",
    "myUpdates",
    "realtimePrice",
}


def test_all_expected_operations_ship() -> None:
    assert set(operation_names()) == EXPECTED_OPERATIONS


@pytest.mark.parametrize("name", operation_names())
def test_document_validates_against_blink_schema(name: str) -> None:
    ast = parse(document(name))
    assert validate(blink_schema(), ast) == []
    (operation,) = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    assert operation.name is not None and operation.name.value == name


def test_validation_catches_a_wrong_field() -> None:
    """Guards the test above: a document with a field Blink lacks must not validate."""
    broken = document("me").replace("defaultWalletId", "defaultWalletIdentifier")
    assert validate(blink_schema(), parse(broken)) != []
