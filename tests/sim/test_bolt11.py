"""Payment requests carry amount, hash, secret, memo and expiry in real BOLT11 framing."""

import os

import pytest

from tipsplit.sim.bolt11 import PaymentRequestError, decode_payment_request, encode_payment_request

SPEC_EXAMPLE = (
    "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqq"
    "syqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53"
    "ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh"
)


def test_reads_the_bolt11_specification_example() -> None:
    decoded = decode_payment_request(SPEC_EXAMPLE)
    assert decoded.amount_sats == 250_000
    assert decoded.payment_hash == "0001020304050607080900010203040506070809000102030405060708090102"
    assert decoded.description == "1 cup coffee"
    assert decoded.expiry_seconds == 60


@pytest.mark.parametrize("amount", [1, 7, 99, 100, 2_500, 100_000, 1_234_567, 21_000_000])
def test_round_trips_amount_hash_memo_and_expiry(amount: int) -> None:
    payment_hash, secret = os.urandom(32), os.urandom(32)
    request = encode_payment_request(
        amount_sats=amount, payment_hash=payment_hash, payment_secret=secret, timestamp=1_700_000_000,
        expiry_seconds=86_400, signature=os.urandom(65), description="Coffee + tip ☕",
    )
    assert request.startswith("lnbc")
    decoded = decode_payment_request(request)
    assert (decoded.amount_sats, decoded.payment_hash, decoded.payment_secret) == (amount, payment_hash.hex(), secret.hex())
    assert (decoded.description, decoded.expiry_seconds, decoded.timestamp) == ("Coffee + tip ☕", 86_400, 1_700_000_000)


@pytest.mark.parametrize("bad", ["", "hello", "lnbc1qqqqqq", SPEC_EXAMPLE[:-1] + "q", SPEC_EXAMPLE.replace("lnbc", "xxbc")])
def test_refuses_what_is_not_a_payment_request(bad: str) -> None:
    with pytest.raises(PaymentRequestError):
        decode_payment_request(bad)
