"""The Blink client against the simulator over real HTTP: every operation and its errors."""

import asyncio
import hashlib
from decimal import Decimal

import pytest

from tests.blink.conftest import NewAccount, SimControl
from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import (
    BlinkApiError,
    BlinkAuthError,
    BlinkDuplicateExternalId,
    BlinkGraphQLError,
    BlinkNotFound,
)
from tipsplit.blink.types import InvoiceStatus, PaymentSendStatus, PublicWallet, TxStatus


async def test_me_lists_the_keys_account_and_wallets(blink: BlinkClient, new_account: NewAccount) -> None:
    account = await new_account(balance=5_000)
    me = await blink.with_api_key(account.api_key).me()
    assert me.username == account.username
    assert me.default_wallet_id == account.btc_wallet_id
    wallets = {w.id: w for w in me.wallets}
    assert wallets[account.btc_wallet_id].currency == "BTC"
    assert wallets[account.btc_wallet_id].balance == 5_000
    assert wallets[account.usd_wallet_id].currency == "USD"
    assert me.wallet(account.btc_wallet_id) == wallets[account.btc_wallet_id]


async def test_a_key_does_not_own_another_accounts_wallet(blink: BlinkClient, new_account: NewAccount) -> None:
    merchant, stranger = await new_account(), await new_account()
    me = await blink.with_api_key(stranger.api_key).me()
    assert me.wallet(merchant.btc_wallet_id) is None


async def test_account_default_wallet_finds_the_btc_wallet(blink: BlinkClient, new_account: NewAccount) -> None:
    account = await new_account()
    assert await blink.account_default_wallet(account.username) == PublicWallet(account.btc_wallet_id, "BTC")


async def test_account_default_wallet_finds_a_usd_default(blink: BlinkClient, new_account: NewAccount) -> None:
    account = await new_account(default_currency="USD")
    assert await blink.account_default_wallet(account.username) == PublicWallet(account.usd_wallet_id, "USD")


async def test_usd_invoice_for_sats_credits_the_cents_of_blinks_price(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    account = await new_account(default_currency="USD")
    price = await blink.realtime_price("USD")
    external_id = f"usd-{account.username}"
    invoice = await blink.create_usd_invoice_on_behalf_of_recipient(
        account.usd_wallet_id, 2_000, "tip", expires_in_minutes=5, external_id=external_id
    )
    assert invoice.satoshis == 2_000 and invoice.status is InvoiceStatus.PENDING
    with pytest.raises(BlinkDuplicateExternalId):
        await blink.create_usd_invoice_on_behalf_of_recipient(account.usd_wallet_id, 2_000, external_id=external_id)
    await control.pay(invoice.payment_request)
    cents = 2_000 * price.sat_price_base // 10**price.sat_price_offset
    assert cents > 0
    assert await control.balance(account.usd_wallet_id) == cents
    assert await control.balance(account.btc_wallet_id) == 0


async def test_usd_invoice_to_a_btc_wallet_is_refused(blink: BlinkClient, new_account: NewAccount) -> None:
    account = await new_account()
    with pytest.raises(BlinkApiError, match="Unsupported operation for wallet's currency"):
        await blink.create_usd_invoice_on_behalf_of_recipient(account.btc_wallet_id, 2_000)


async def test_unknown_username_is_not_found(blink: BlinkClient) -> None:
    with pytest.raises(BlinkNotFound, match="accountDefaultWallet"):
        await blink.account_default_wallet("nobody_has_this_name")


async def test_invoice_created_and_paid_from_outside(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos = await new_account()
    client = blink.with_api_key(pos.api_key)
    invoice = await client.create_invoice(pos.btc_wallet_id, 2_100, "coffee + tip", expires_in_minutes=15)
    assert invoice.satoshis == 2_100
    assert invoice.status is InvoiceStatus.PENDING
    assert len(bytes.fromhex(invoice.payment_hash)) == 32
    assert invoice.payment_request.startswith("ln")
    assert await client.invoice_status_by_hash(invoice.payment_hash) is InvoiceStatus.PENDING

    await control.pay(invoice.payment_request)

    assert await client.invoice_status_by_hash(invoice.payment_hash) is InvoiceStatus.PAID
    assert await control.balance(pos.btc_wallet_id) == 2_100


async def test_invoice_hashes_are_sha256_of_distinct_preimages(blink: BlinkClient, new_account: NewAccount) -> None:
    pos = await new_account()
    client = blink.with_api_key(pos.api_key)
    first = await client.create_invoice(pos.btc_wallet_id, 10)
    second = await client.create_invoice(pos.btc_wallet_id, 10)
    assert first.payment_hash != second.payment_hash
    assert first.payment_request != second.payment_request


async def test_forwarding_leg_is_paid_once_and_second_send_is_already_paid(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos, merchant = await new_account(balance=10_000), await new_account()
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 7_000, "base", 60)
    assert leg.satoshis == 7_000

    first = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request, memo="base")
    again = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request, memo="base")

    assert first.status is PaymentSendStatus.SUCCESS and first.settled
    assert again.status is PaymentSendStatus.ALREADY_PAID and again.settled
    assert await control.balance(pos.btc_wallet_id) == 3_000
    assert await control.balance(merchant.btc_wallet_id) == 7_000
    assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PAID


async def test_wallet_sends_show_a_held_send_as_pending_then_succeeded(
    blink: BlinkClient, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(balance=1_000), await new_account()
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 300)
    assert (await client.wallet_sends(pos.btc_wallet_id, leg.payment_hash)).statuses == ()
    await faults.add_fault(operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=300, count=1)

    assert (await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)).status is PaymentSendStatus.PENDING
    held = await client.wallet_sends(pos.btc_wallet_id, leg.payment_hash)
    assert held.in_flight and not held.succeeded
    await asyncio.sleep(0.6)

    settled = await client.wallet_sends(pos.btc_wallet_id, leg.payment_hash)
    assert settled.statuses == (TxStatus.SUCCESS,) and settled.succeeded and not settled.in_flight
    # The recipient's wallet received; it sent nothing for this invoice.
    receiver = blink.with_api_key(merchant.api_key)
    assert (await receiver.wallet_sends(merchant.btc_wallet_id, leg.payment_hash)).statuses == ()


async def test_a_repeated_external_id_is_refused_not_invoiced_twice(blink: BlinkClient, new_account: NewAccount) -> None:
    pos, merchant = await new_account(balance=0), await new_account()
    client = blink.with_api_key(pos.api_key)
    await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 10, external_id="ts-leg-0")
    with pytest.raises(BlinkDuplicateExternalId):
        await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 10, external_id="ts-leg-0")
    other = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 10, external_id="ts-leg-1")
    assert other.satoshis == 10


async def test_insufficient_balance_is_a_failure_result(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos, merchant = await new_account(balance=100), await new_account()
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 101)

    result = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)

    assert result.status is PaymentSendStatus.FAILURE and not result.settled
    assert [e.code for e in result.errors] == ["INSUFFICIENT_BALANCE"]
    assert await control.balance(pos.btc_wallet_id) == 100
    assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PENDING


async def test_expired_invoice_refuses_payment(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos, merchant = await new_account(balance=1_000), await new_account()
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 50, expires_in_minutes=1)

    await control.advance_clock(61)

    assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.EXPIRED
    result = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
    assert result.status is PaymentSendStatus.FAILURE
    assert await control.balance(pos.btc_wallet_id) == 1_000


async def test_unknown_invoice_hash_is_not_found(blink: BlinkClient, new_account: NewAccount) -> None:
    pos = await new_account()
    with pytest.raises(BlinkNotFound):
        await blink.with_api_key(pos.api_key).invoice_status_by_hash(hashlib.sha256(b"never issued").hexdigest())


async def test_invoice_on_a_wallet_of_another_account_is_refused(
    blink: BlinkClient, new_account: NewAccount
) -> None:
    pos, merchant = await new_account(), await new_account()
    with pytest.raises(BlinkApiError, match="lnInvoiceCreate: .*InvalidWalletForAccountError") as raised:
        await blink.with_api_key(pos.api_key).create_invoice(merchant.btc_wallet_id, 10)
    assert [e.code for e in raised.value.errors] == [None], "Blink's walletId middleware gives a message, no code"


@pytest.mark.parametrize("key", ["blink_not_a_real_key", None])
async def test_bad_or_missing_key_is_an_auth_error(blink: BlinkClient, key: str | None) -> None:
    with pytest.raises(BlinkAuthError) as raised:
        await blink.with_api_key(key).me()
    if key:
        assert key not in str(raised.value)


async def test_bad_key_cannot_pay(blink: BlinkClient, new_account: NewAccount, control: SimControl) -> None:
    pos, merchant = await new_account(balance=100), await new_account()
    leg = await blink.with_api_key(pos.api_key).create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 10)
    with pytest.raises(BlinkAuthError):
        await blink.with_api_key("blink_forged").pay_invoice(pos.btc_wallet_id, leg.payment_request)
    assert await control.balance(pos.btc_wallet_id) == 100


async def test_a_key_without_write_scope_cannot_pay(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos = await new_account(balance=100, scopes=["READ", "RECEIVE"])
    merchant = await new_account()
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 10)
    with pytest.raises(BlinkAuthError, match="not authorized"):
        await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
    assert await control.balance(pos.btc_wallet_id) == 100


async def test_paying_from_a_wallet_the_key_does_not_own_fails(
    blink: BlinkClient, new_account: NewAccount, control: SimControl
) -> None:
    pos, other = await new_account(balance=100), await new_account(balance=100)
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(pos.btc_wallet_id, 10)
    result = await client.pay_invoice(other.btc_wallet_id, leg.payment_request)
    assert result.status is PaymentSendStatus.FAILURE
    assert await control.balance(other.btc_wallet_id) == 100


async def test_graphql_errors_are_typed_with_their_code(blink: BlinkClient) -> None:
    with pytest.raises(BlinkGraphQLError, match="realtimePrice: INVALID_INPUT") as raised:
        await blink.realtime_price("XYZ")
    assert raised.value.codes == ("INVALID_INPUT",)


@pytest.mark.parametrize(
    ("currency", "fraction_digits", "amount", "sats"),
    [("USD", 2, "1.00", 1_000), ("USD", 2, "0.01", 10), ("JPY", 0, "150", 1_000), ("JPY", 0, "1", 7)],
)
async def test_realtime_price_converts_display_amounts(
    blink: BlinkClient, currency: str, fraction_digits: int, amount: str, sats: int
) -> None:
    """The simulator's default prices: 100,000 USD and 15,000,000 JPY per BTC."""
    price = await blink.realtime_price(currency)
    assert price.currency == currency
    assert price.fraction_digits == fraction_digits
    assert price.sats_for(Decimal(amount)) == sats


async def test_concurrent_calls_share_one_pool(blink: BlinkClient, new_account: NewAccount) -> None:
    account = await new_account()
    client = blink.with_api_key(account.api_key)
    results = await asyncio.gather(*(client.me() for _ in range(20)))
    assert {me.account_id for me in results} == {results[0].account_id}


async def test_scopes_say_what_a_key_may_do(blink: BlinkClient, control: SimControl) -> None:
    full = await control.create_account()
    assert await blink.with_api_key(full.api_key).scopes() == {"READ", "RECEIVE", "WRITE"}
    read_only = await control.create_account(scopes=["READ"])
    assert await blink.with_api_key(read_only.api_key).scopes() == {"READ"}
