"""BOLT11-shaped payment requests: real bech32 framing, amount, payment hash, secret, memo, expiry.

The simulator never routes over Lightning, but clients parse payment requests
(amount checks, hash extraction), so ours follow the BOLT11 layout. The
signature is random bytes: nothing in the simulator trusts it.
"""

import base64
import re
from dataclasses import dataclass
from functools import lru_cache

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(CHARSET)}
_BASE32_TO_BECH32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CHARSET.encode())
_BECH32_TO_WORD = bytes.maketrans(CHARSET.encode(), bytes(range(32)))
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_TAG_PAYMENT_HASH = CHARSET.index("p")
_TAG_SECRET = CHARSET.index("s")
_TAG_DESCRIPTION = CHARSET.index("d")
_TAG_EXPIRY = CHARSET.index("x")
_MSAT_PER_UNIT = {"m": 100_000_000, "u": 100_000, "n": 100}
_HRP = re.compile(r"^ln([a-z]+?)(\d+)?([munp])?$")
DEFAULT_EXPIRY_SECONDS = 3600
SIGNATURE_BYTES = 65


class PaymentRequestError(ValueError):
    """The string is not a BOLT11 payment request this module can read."""


@dataclass(frozen=True)
class DecodedPaymentRequest:
    """What a payer learns from a payment request before paying it."""

    network: str
    amount_msat: int | None
    timestamp: int
    payment_hash: str
    payment_secret: str | None
    description: str | None
    expiry_seconds: int

    @property
    def amount_sats(self) -> int | None:
        """The amount in whole sats (sub-sat amounts round down, as a Blink wallet cannot hold them)."""
        return None if self.amount_msat is None else self.amount_msat // 1000


def _generator_mix(top: int) -> int:
    mix = 0
    for i, generator in enumerate(_GENERATOR):
        if (top >> i) & 1:
            mix ^= generator
    return mix


# The checksum's step for each value of the 5 bits shifted out: one lookup instead of five tests per word.
_MIX_BY_TOP = tuple(_generator_mix(top) for top in range(32))


def _polymod(values: list[int] | bytes) -> int:
    chk = 1
    mix = _MIX_BY_TOP
    for value in values:
        chk = (chk & 0x1FFFFFF) << 5 ^ value ^ mix[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _checksum_text(hrp: str, data_text: str) -> str:
    """The six checksum characters for `hrp` and the data part already written as bech32 characters."""
    words = bytes(_hrp_expand(hrp)) + data_text.encode("ascii").translate(_BECH32_TO_WORD) + bytes(6)
    polymod = _polymod(words) ^ 1
    return "".join([CHARSET[(polymod >> 5 * (5 - i)) & 31] for i in range(6)])


def _bytes_text(data: bytes) -> str:
    """Bytes as bech32 characters of 5-bit words, big-endian, the last word padded with zero bits.

    Base32 cuts bytes into the same words, padded the same way; only the alphabet differs.
    """
    count = (len(data) * 8 + 4) // 5
    return base64.b32encode(data)[:count].translate(_BASE32_TO_BECH32).decode("ascii")


def _from_words(words: list[int]) -> bytes:
    """5-bit words as bytes, a trailing part-byte of padding dropped."""
    value = 0
    for word in words:
        value = value << 5 | word
    length, spare = divmod(len(words) * 5, 8)
    return (value >> spare).to_bytes(length, "big")


def _int_words(value: int, length: int | None = None) -> list[int]:
    words: list[int] = []
    while value:
        words.insert(0, value & 31)
        value >>= 5
    if length is not None:
        words = [0] * (length - len(words)) + words
    return words or [0]


def _words_int(words: list[int]) -> int:
    value = 0
    for word in words:
        value = value << 5 | word
    return value


def _int_text(value: int, length: int | None = None) -> str:
    return "".join([CHARSET[w] for w in _int_words(value, length)])


def _tagged(tag: int, text: str) -> str:
    return CHARSET[tag] + CHARSET[len(text) >> 5] + CHARSET[len(text) & 31] + text


def _amount_text(amount_sats: int) -> str:
    msat = amount_sats * 1000
    for unit in ("m", "u", "n"):
        if msat % _MSAT_PER_UNIT[unit] == 0:
            return f"{msat // _MSAT_PER_UNIT[unit]}{unit}"
    raise AssertionError("whole sats are always a multiple of 100 msat")


def encode_payment_request(
    *,
    amount_sats: int,
    payment_hash: bytes,
    payment_secret: bytes,
    timestamp: int,
    expiry_seconds: int,
    signature: bytes,
    description: str | None = None,
    network: str = "bc",
) -> str:
    """Return a bech32 BOLT11 string carrying these fields."""
    if amount_sats <= 0:
        raise ValueError("amount_sats must be positive")
    if len(payment_hash) != 32 or len(payment_secret) != 32 or len(signature) != SIGNATURE_BYTES:
        raise ValueError("payment hash and secret are 32 bytes, the signature 65")
    hrp = f"ln{network}{_amount_text(amount_sats)}"
    data = _int_text(timestamp, 7)
    data += _tagged(_TAG_PAYMENT_HASH, _bytes_text(payment_hash))
    data += _tagged(_TAG_SECRET, _bytes_text(payment_secret))
    if description:
        data += _tagged(_TAG_DESCRIPTION, _bytes_text(description.encode()))
    data += _tagged(_TAG_EXPIRY, _int_text(expiry_seconds))
    data += _bytes_text(signature)
    return hrp + "1" + data + _checksum_text(hrp, data)


def _parse_amount(digits: str | None, unit: str | None) -> int | None:
    if digits is None:
        if unit is not None:
            raise PaymentRequestError("amount multiplier without digits")
        return None
    if unit is None:
        return int(digits) * 100_000_000_000
    if unit == "p":
        if int(digits) % 10:
            raise PaymentRequestError("pico-bitcoin amount is not a whole millisatoshi")
        return int(digits) // 10
    return int(digits) * _MSAT_PER_UNIT[unit]


_SIGNATURE_WORDS = (SIGNATURE_BYTES * 8 + 4) // 5


@lru_cache(maxsize=4096)
def decode_payment_request(payment_request: str) -> DecodedPaymentRequest:
    """Read a BOLT11 payment request; raise PaymentRequestError when it is malformed.

    Cached: a payment request is read when it is paid, looked up and reported on, and the answer is a
    frozen value of the string alone.
    """
    text = payment_request.strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:"):]
    if text != text.lower() and text != text.upper():
        raise PaymentRequestError("mixed-case bech32 string")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or len(text) - sep < 7:
        raise PaymentRequestError("no bech32 separator")
    hrp, body = text[:sep], text[sep + 1:]
    try:
        words = [_CHARSET_INDEX[c] for c in body]
    except KeyError:
        raise PaymentRequestError("invalid bech32 character") from None
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise PaymentRequestError("bad bech32 checksum")
    match = _HRP.match(hrp)
    if match is None:
        raise PaymentRequestError(f"not a lightning payment request prefix: {hrp!r}")
    network, digits, unit = match.groups()
    data = words[:-6]
    sig_words = _SIGNATURE_WORDS
    if len(data) < 7 + sig_words:
        raise PaymentRequestError("payment request too short")
    fields, pos = data[7:-sig_words], 0
    payment_hash: str | None = None
    secret: str | None = None
    description: str | None = None
    expiry = DEFAULT_EXPIRY_SECONDS
    while pos + 3 <= len(fields):
        tag, length = fields[pos], fields[pos + 1] << 5 | fields[pos + 2]
        value = fields[pos + 3:pos + 3 + length]
        pos += 3 + length
        if tag == _TAG_PAYMENT_HASH and length == 52:
            payment_hash = _from_words(value)[:32].hex()
        elif tag == _TAG_SECRET and length == 52:
            secret = _from_words(value)[:32].hex()
        elif tag == _TAG_DESCRIPTION:
            description = _from_words(value).decode("utf-8", errors="replace")
        elif tag == _TAG_EXPIRY:
            expiry = _words_int(value)
    if payment_hash is None:
        raise PaymentRequestError("payment request has no payment hash")
    return DecodedPaymentRequest(
        network=network,
        amount_msat=_parse_amount(digits, unit),
        timestamp=_words_int(data[:7]),
        payment_hash=payment_hash,
        payment_secret=secret,
        description=description,
        expiry_seconds=expiry,
    )
