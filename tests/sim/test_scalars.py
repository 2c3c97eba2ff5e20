"""Blink's custom scalars, accepted and refused as Blink's scalar code does, over HTTP and one by one."""

from typing import Any

import pytest
from graphql import GraphQLScalarType, parse_value, specified_scalar_types

from tests.sim import documents as doc
from tests.sim.conftest import Sim
from tipsplit.sim.bolt11 import decode_payment_request
from tipsplit.sim.scalars import OUTPUT_ONLY, SCALARS, Refused
from tipsplit.sim.schema import sim_schema

BBTV2_ON_BEHALF = """
mutation lnInvoiceCreateOnBehalfOfRecipient($input: LnInvoiceCreateOnBehalfOfRecipientInput!) {
  lnInvoiceCreateOnBehalfOfRecipient(input: $input) {
    errors { message }
    invoice { paymentRequest paymentHash paymentSecret satoshis }
  }
}
"""


async def test_a_request_made_the_way_bbtv2_makes_it_creates_the_invoice(sim: Sim) -> None:
    """BBTV2 sends amount and expiresIn as strings; Blink's SatAmount and Minutes parseInt them."""
    staff = await sim.account()
    variables = {"input": {"recipientWalletId": staff.btc_wallet_id, "amount": "60", "memo": "BlinkPOS: 50 + 10 tip",
                           "expiresIn": "15"}}
    payload = (await sim.data(BBTV2_ON_BEHALF, variables))["lnInvoiceCreateOnBehalfOfRecipient"]
    assert payload["errors"] == []
    assert payload["invoice"]["satoshis"] == 60
    decoded = decode_payment_request(payload["invoice"]["paymentRequest"])
    assert (decoded.amount_sats, decoded.expiry_seconds) == (60, 15 * 60)


async def test_a_refused_mutation_input_is_a_payload_error_with_blinks_text(sim: Sim) -> None:
    staff = await sim.account()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": "sixty"}, "Invalid value for SatAmount"),
        ({"amount": -5}, "Invalid value for SatAmount"),
        ({"amount": 10**13 + 1}, "Value too big for SatAmount"),
        ({"amount": True}, "Invalid type for SatAmount"),
        ({"amount": 10, "expiresIn": 1.5}, "Invalid value for Minutes"),
        ({"amount": 10, "memo": "é" * 320}, "Memo is too long"),
    ]
    for fields, message in cases:
        variables = {"input": {"recipientWalletId": staff.btc_wallet_id, **fields}}
        payload = (await sim.data(BBTV2_ON_BEHALF, variables))["lnInvoiceCreateOnBehalfOfRecipient"]
        assert payload == {"errors": [{"message": message}], "invoice": None}, fields


async def test_a_refused_literal_in_the_document_is_answered_the_same_way(sim: Sim) -> None:
    staff = await sim.account()
    query = ('mutation { lnInvoiceCreateOnBehalfOfRecipient(input: {recipientWalletId: "%s", amount: "60"}) '
             "{ errors { message } invoice { satoshis } } }") % staff.btc_wallet_id
    body = (await sim.gql(query)).json()
    assert body["data"]["lnInvoiceCreateOnBehalfOfRecipient"] == {
        "errors": [{"message": "Invalid type for SatAmount"}], "invoice": None}


async def test_a_refused_query_argument_is_a_graphql_error(sim: Sim) -> None:
    body = (await sim.gql(doc.STATUS_BY_HASH, {"input": {"paymentHash": "not-a-hash"}})).json()
    assert body["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("Invalid value for PaymentHash", "INVALID_INPUT")]


def test_every_custom_scalar_of_the_schema_has_blinks_rules() -> None:
    custom = {name for name, t in sim_schema().type_map.items()
              if isinstance(t, GraphQLScalarType) and name not in specified_scalar_types}
    assert custom == set(SCALARS) | OUTPUT_ONLY


def value(name: str, raw: Any) -> Any:
    return SCALARS[name].parse_value(raw)


def literal(name: str, text: str) -> Any:
    return SCALARS[name].parse_literal(parse_value(text))


def refusal(result: Any) -> str | None:
    return result.message if isinstance(result, Refused) else None


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("SatAmount", "60", 60), ("SatAmount", " 60sats", 60), ("SatAmount", 1.9, 1), ("SatAmount", 0, 0),
    ("SatAmount", 10**13, 10**13), ("CentAmount", "125", 125), ("CentAmount", 12.0, 12),
    ("Minutes", "15", 15), ("Minutes", 15.0, 15), ("Seconds", "0", 0),
    ("WalletId", "1c9a2b9e-3d4f-4a5b-8c6d-7e8f9a0b1c2d", "1c9a2b9e-3d4f-4a5b-8c6d-7e8f9a0b1c2d"),
    ("PaymentHash", "AB" * 32, "AB" * 32), ("Username", "Alice_1", "alice_1"),
    ("Username", "+16502530000", "+16502530000"), ("Phone", "0016502530000", "+16502530000"),
    ("DisplayCurrency", "eur", "EUR"), ("CountryCode", "sv", "SV"), ("Language", "DEFAULT", ""),
    ("Language", "pt-BR", "pt-BR"), ("TxExternalId", "leg_1-a", "leg_1-a"), ("Memo", "x" * 639, "x" * 639),
    ("Hex32Bytes", "ab" * 32, "ab" * 32), ("LnPaymentRequest", "LNBC10n1xyz", "LNBC10n1xyz"),
    ("EndpointUrl", "https://example.com/hook", "https://example.com/hook"),
    ("EmailAddress", "alice@example.com", "alice@example.com"), ("ContactHandle", "bob@getalby.com", "bob@getalby.com"),
    ("ContactAlias", "Ana María", "Ana María"), ("SignedAmount", "-12", "-12"),
    ("SignedDisplayMajorAmount", "-1.50", "-1.50"), ("OneTimeAuthCode", "1234567", "1234567"),
    ("OnChainAddress", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("OnChainAddress", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
    ("NotificationCategory", "Payments", "Payments"),
])
def test_accepted_values(name: str, raw: Any, expected: Any) -> None:
    assert value(name, raw) == expected


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("SatAmount", "abc", "Invalid value for SatAmount"), ("SatAmount", "-1", "Invalid value for SatAmount"),
    ("SatAmount", None, "Invalid type for SatAmount"), ("SatAmount", [1], "Invalid type for SatAmount"),
    ("SatAmount", 10**13 + 1, "Value too big for SatAmount"), ("CentAmount", 1.5, "Invalid value for CentAmount"),
    ("CentAmount", 10**13 + 1, "Value too big for CentAmount"), ("Minutes", -1, "Invalid value for Minutes"),
    ("Minutes", True, "Invalid type for Minutes"), ("WalletId", "no-such-wallet", "Invalid value for WalletId"),
    ("WalletId", 7, "Invalid type for WalletId"), ("PaymentHash", "00" * 31, "Invalid value for PaymentHash"),
    ("Username", "1abc", "Invalid value for Username"), ("Username", "ab", "Invalid value for Username"),
    ("Username", "lnbc1abc", "Invalid value for Username"), ("Phone", "12", "Phone number is not a valid phone number"),
    ("DisplayCurrency", "EURO1", "Invalid value for DisplayCurrency"), ("Language", "xx", "Invalid value for Language"),
    ("TxExternalId", "Leg-1", "Invalid external id string passed. ID should be either alphanumeric or contain the "
     "characters '_' or '-'. It should not be more than 100 characters long as well."),
    ("Memo", "é" * 320, "Memo is too long"), ("Hex32Bytes", "AB" * 32, "Hex32Bytes is not valid hex"),
    ("Hex32Bytes", "ab" * 31, "Hex32Bytes is not 32 bytes"), ("LnPaymentRequest", "lnbc 1", "Invalid value for LnPaymentRequest"),
    ("EndpointUrl", " https://example.com", "Invalid value for EndpointUrl"),
    ("EndpointUrl", "ftp://example.com", "Invalid value for EndpointUrl"),
    ("EmailAddress", "alice@localhost", "Email is not a valid email address"),
    ("ContactAlias", 3, "Invalid type for AuthToken"), ("ContactAlias", "Al", "Invalid value for ContactAlias"),
    ("SignedAmount", 12, "Invalid type for SignedAmount"), ("SignedAmount", "x", "Invalid value for SignedAmount"),
    ("OneTimeAuthCode", "12345", "Invalid value for OneTimeAuthCode"),
    ("OnChainAddress", "tb1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "Invalid value for OnChainAddress"),
    ("Feedback", "x" * 1025, "Feedback is too long"),
])
def test_refused_values(name: str, raw: Any, message: str) -> None:
    assert refusal(value(name, raw)) == message


@pytest.mark.parametrize(("name", "text", "expected", "message"), [
    ("SatAmount", "60", 60, None), ("SatAmount", '"60"', None, "Invalid type for SatAmount"),
    ("Minutes", "1.5", None, "Invalid type for Minutes"), ("WalletId", "7", None, "Invalid type for WalletId"),
    ("DisplayCurrency", "7", None, "Invalid type for Currency"), ("Memo", '"hi"', "hi", None),
    ("SignedDisplayMajorAmount", "1.25", "1.25", None), ("SafeInt", "9007199254740992", None, None),
])
def test_literals(name: str, text: str, expected: Any, message: str | None) -> None:
    result = literal(name, text)
    assert refusal(result) == message
    if message is None:
        assert result == expected


def test_safe_int_throws_as_blinks_does() -> None:
    assert value("SafeInt", 5.0) == 5
    for raw, text in (("5", "SafeInt cannot represent non 53-bit signed integer value: 5"),
                      (1.5, "SafeInt cannot represent non-integer value: 1.5"),
                      ("", "SafeInt cannot represent non 53-bit signed integer value: (empty string)")):
        with pytest.raises(Exception, match=text.replace("(", r"\(").replace(")", r"\)")):
            value("SafeInt", raw)
