"""Blink's custom scalars, parsed as Blink's own scalar code parses them (core/api/src/graphql/*/types/scalar).

Blink's scalars do not throw on a bad value: `parseValue`/`parseLiteral` *return* an
InputValidationError, which graphql-js passes to the resolver as the argument's value,
and each resolver answers it (a payload error for mutations, a GraphQL error for
queries). `Refused` plays that part here. Values arriving as JSON variables follow
JavaScript's rules: `"60"` is a valid SatAmount (`Number.parseInt`), `1.5` is a
valid SatAmount (`Math.trunc`) but not valid Minutes. Output-only scalars (AuthToken,
EndpointId, the Totp and registration ids) keep graphql-js's defaults and accept anything.
"""

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from graphql import GraphQLError, ValueNode
from graphql.language import FloatValueNode, IntValueNode, StringValueNode

MAX_SATS = 10_000_000_000_000
MAX_CENTS = 10_000_000_000_000
MAX_BYTES_FOR_MEMO = 639
MAX_LENGTH_FOR_FEEDBACK = 1024
MAX_SAFE_INTEGER = 2**53 - 1

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE)
USERNAME = re.compile(r"^(?![13_]|bc1|lnbc1)(?=.*[a-z])[0-9a-z_]{3,50}$", re.IGNORECASE)
SHA256_HEX = re.compile(r"^[a-f0-9]{64}$", re.IGNORECASE)
LN_PAYMENT_REQUEST = re.compile(r"^ln[a-z0-9]+$", re.IGNORECASE)
EXTERNAL_ID = re.compile(r"^[a-z0-9_-]{1,100}$")
SIGNED_DISPLAY_AMOUNT = re.compile(r"^-?(\d+|\d*\.\d+)$")
ONE_TIME_AUTH_CODE = re.compile(r"^[0-9]{6}")
INVALID_EXTERNAL_ID = (
    "Invalid external id string passed. ID should be either alphanumeric or contain the characters '_' or '-'. "
    "It should not be more than 100 characters long as well."
)
LANGUAGES = frozenset("""
af af-ZA ar ar-AE ar-BH ar-DZ ar-EG ar-IQ ar-JO ar-KW ar-LB ar-LY ar-MA ar-OM ar-QA ar-SA ar-SY ar-TN ar-YE az az-AZ
be be-BY bg bg-BG bs-BA ca ca-ES cs cs-CZ cy cy-GB da da-DK de de-AT de-CH de-DE de-LI de-LU dv dv-MV el el-GR en
en-AU en-BZ en-CA en-CB en-GB en-IE en-JM en-NZ en-PH en-TT en-US en-ZA en-ZW eo es es-AR es-BO es-CL es-CO es-CR
es-DO es-EC es-ES es-GT es-HN es-MX es-NI es-PA es-PE es-PR es-PY es-SV es-UY es-VE et et-EE eu eu-ES fa fa-IR fi
fi-FI fo fo-FO fr fr-BE fr-CA fr-CH fr-FR fr-LU fr-MC gl gl-ES gu gu-IN he he-IL hi hi-IN hr hr-BA hr-HR hu hu-HU hy
hy-AM id id-ID is is-IS it it-CH it-IT ja ja-JP ka ka-GE kk kk-KZ kn kn-IN ko ko-KR kok kok-IN ky ky-KG lt lt-LT lv
lv-LV mi mi-NZ mk mk-MK mn mn-MN mr mr-IN ms ms-BN ms-MY mt mt-MT nb nb-NO nl nl-BE nl-NL nn-NO ns ns-ZA pa pa-IN pl
pl-PL ps ps-AR pt pt-BR pt-PT qu qu-BO qu-EC qu-PE ro ro-RO ru ru-RU sa sa-IN se se-FI se-NO se-SE sk sk-SK sl sl-SI
sq sq-AL sr sr-BA sr-SP sv sv-FI sv-SE sw sw-KE syr syr-SY ta ta-IN te te-IN th th-TH tl tl-PH tn tn-ZA tr tr-TR ts
tt tt-RU uk uk-UA ur ur-PK uz uz-UZ vi vi-VN xh xh-ZA zh zh-CN zh-HK zh-MO zh-SG zh-TW zu zu-ZA
""".split())


class Refused(Exception):
    """The InputValidationError a Blink scalar returns for a bad value; resolvers answer it (code INVALID_INPUT)."""

    code = "INVALID_INPUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Check = Callable[[str], Any]


@dataclass(frozen=True)
class ScalarRules:
    parse_value: Callable[[Any], Any]
    parse_literal: Callable[..., Any]


# ---- JavaScript semantics -----------------------------------------------------------

_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000\ufeff"
_LEADING_INT = re.compile(r"[+-]?[0-9]+")


def js_parse_int(text: str) -> float | int:
    """`Number.parseInt(text, 10)`: leading whitespace, a sign and digits; NaN when no digit leads."""
    match = _LEADING_INT.match(text.lstrip(_JS_SPACE))
    return int(match.group()) if match else float("nan")


def is_js_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_js_integer(value: Any) -> bool:
    """`Number.isInteger`: 3 and 3.0 are integers; NaN, infinities and 1.5 are not."""
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def js_string(value: Any) -> str:
    """`String(value)` for the JSON values a variable can hold."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def utf16_length(value: str) -> int:
    """A JavaScript string's `.length`."""
    return len(value.encode("utf-16-le")) // 2


# ---- rule builders ------------------------------------------------------------------


def string_scalar(name: str, check: Check, type_message: str | None = None, literal_message: str | None = None) -> ScalarRules:
    """The common shape: a JSON string or a string literal, else "Invalid type for <name>"."""
    value_refusal = type_message or f"Invalid type for {name}"
    literal_refusal = literal_message or f"Invalid type for {name}"

    def parse_value(value: Any) -> Any:
        return check(value) if isinstance(value, str) else Refused(value_refusal)

    def parse_literal(node: ValueNode, _variables: Any = None) -> Any:
        return check(node.value) if isinstance(node, StringValueNode) else Refused(literal_refusal)

    return ScalarRules(parse_value, parse_literal)


def amount_scalar(name: str, maximum: int | None, truncate_numbers: bool, minimum: int | None = 0) -> ScalarRules:
    """SatAmount, CentAmount, Minutes, Seconds: a JSON number or numeric string, or an Int literal."""

    def valid(value: Any) -> Any:
        if isinstance(value, str):
            number: float | int = js_parse_int(value)
        elif truncate_numbers and isinstance(value, float) and math.isfinite(value):
            number = int(value)
        else:
            number = value
        if not (is_js_integer(number) and (minimum is None or number >= minimum)):
            return Refused(f"Invalid value for {name}")
        if maximum is not None and number > maximum:
            return Refused(f"Value too big for {name}")
        return int(number)

    def parse_value(value: Any) -> Any:
        return valid(value) if isinstance(value, str) or is_js_number(value) else Refused(f"Invalid type for {name}")

    def parse_literal(node: ValueNode, _variables: Any = None) -> Any:
        return valid(node.value) if isinstance(node, IntValueNode) else Refused(f"Invalid type for {name}")

    return ScalarRules(parse_value, parse_literal)


def matching(pattern: re.Pattern[str], message: str, transform: Callable[[str], str] = str) -> Check:
    return lambda value: transform(value) if pattern.search(value) else Refused(message)


# ---- the checks of individual scalars ------------------------------------------------


def phone_number(value: str) -> str | None:
    """Blink's checkedToPhoneNumber (libphonenumber): a possible, valid number of a known country, in E.164."""
    if not value:
        return None
    trimmed = value.strip(_JS_SPACE)
    normalized = "+" + re.sub(r"^(\+|00)", "", trimmed, count=1)
    try:
        number = phonenumbers.parse(normalized, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.region_code_for_number(number) and phonenumbers.is_possible_number(number) \
            and phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def username(value: str) -> Any:
    if USERNAME.match(value):
        return value.lower()
    return phone_number(value) or Refused("Invalid value for Username")


def phone(value: str) -> Any:
    return phone_number(value) or Refused("Phone number is not a valid phone number")


def display_name(message: str) -> Check:
    """checkedToDisplayName: a letter, then three or more letters, spaces or hyphens (a prefix match)."""

    def check(value: str) -> Any:
        head = value[:4]
        if len(head) == 4 and head[0].isalpha() and all(c.isalpha() or c in " -" for c in head[1:]):
            return value
        return Refused(message)

    return check


_EMAIL_LOCAL = re.compile(r"^[a-z\d!#$%&'*+\-/=?^_`{|}~\u00a1-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]+$", re.IGNORECASE)
_EMAIL_TLD = re.compile(r"^([a-z\u00a1-\u00a8\u00aa-\ud7ff\uf900-\ufdcf\ufdf0-\uffef]{2,}|xn[a-z0-9-]{2,})$", re.IGNORECASE)
_EMAIL_LABEL = re.compile(r"^[a-z_\u00a1-\uffff0-9-]+$", re.IGNORECASE)


def is_email(value: str) -> bool:
    """validator.js `isEmail` with its default options, as Blink calls it (the parts a client can reach)."""
    user, at, domain = value.rpartition("@")
    if not at or not user or not domain or len(user.encode()) > 64 or len(domain.encode()) > 254:
        return False
    if len(value) > 254:
        return False
    if user.startswith('"') and user.endswith('"') and len(user) > 1:
        quoted = user[1:-1]
        if any(c in quoted for c in '"\\') or not quoted:
            return False
    elif not all(part and _EMAIL_LOCAL.match(part) for part in user.split(".")):
        return False
    labels = domain.rstrip(".").split(".") if not domain.endswith("..") else [""]
    if len(labels) < 2 or not _EMAIL_TLD.match(labels[-1]) or re.search(r"\s", labels[-1]):
        return False
    for label in labels:
        if not label or len(label) > 63 or not _EMAIL_LABEL.match(label):
            return False
        if label.startswith("-") or label.endswith("-") or re.search(r"[\uff01-\uff5e]", label):
            return False
    return not re.fullmatch(r"[0-9]+", labels[-1])


def email(value: str) -> Any:
    return value if is_email(value) else Refused("Email is not a valid email address")


def lightning_address(value: str) -> bool:
    """A `user@domain` lightning address (LUD-16), as Blink's parseLightningAddress reads one."""
    user, at, domain = value.partition("@")
    return bool(at) and re.fullmatch(r"[a-z0-9\-_.+]+", user or "-", re.IGNORECASE) is not None and bool(user) \
        and "." in domain and re.fullmatch(r"[a-z0-9\-.]+", domain, re.IGNORECASE) is not None


def contact_handle(value: str) -> Any:
    if USERNAME.match(value) or lightning_address(value):
        return value
    return Refused("Invalid value for Handle")


def endpoint_url(value: str) -> Any:
    """`new URL(value)` with an http(s) protocol, and no surrounding whitespace."""
    if value != value.strip(_JS_SPACE):
        return Refused("Invalid value for EndpointUrl")
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError:
        return Refused("Invalid value for EndpointUrl")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return Refused("Invalid value for EndpointUrl")
    return value


def hex32(value: str) -> Any:
    """Buffer.from(value, "hex") must round-trip (lower-case, whole bytes) and hold 32 bytes."""
    if not re.fullmatch(r"(?:[0-9a-f]{2})*", value):
        return Refused("Hex32Bytes is not valid hex")
    if len(value) != 64:
        return Refused("Hex32Bytes is not 32 bytes")
    return value


def memo(value: str) -> Any:
    return value if len(value.encode("utf-8")) <= MAX_BYTES_FOR_MEMO else Refused("Memo is too long")


def feedback(value: str) -> Any:
    return value if utf16_length(value) <= MAX_LENGTH_FOR_FEEDBACK else Refused("Feedback is too long")


def language(value: str) -> Any:
    if value in ("", "DEFAULT"):
        return ""
    return value if value in LANGUAGES else Refused("Invalid value for Language")


def display_currency(value: str) -> Any:
    return value.upper() if 3 <= len(value) <= 4 else Refused("Invalid value for DisplayCurrency")


def country_code(value: str) -> Any:
    return value.upper() if len(value) == 2 else Refused("Invalid value for CountryCode")


# ---- on-chain addresses (Blink checks them with bitcoinjs for its network: mainnet) ---------

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_CONST, _BECH32M_CONST = 1, 0x2BC830A3


def _base58check(value: str) -> bytes | None:
    if not value or any(c not in _BASE58 for c in value):
        return None
    number = 0
    for char in value:
        number = number * 58 + _BASE58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(value) - len(value.lstrip("1"))) + body
    payload, checksum = raw[:-4], raw[-4:]
    return payload if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum else None


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, g in enumerate(generator):
            check ^= g if (top >> i) & 1 else 0
    return check


def _segwit_program(value: str, hrp: str) -> tuple[int, bytes] | None:
    if value.lower() != value and value.upper() != value:
        return None
    text = value.lower()
    prefix, _, data_part = text.rpartition("1")
    if prefix != hrp or len(data_part) < 7 or len(text) > 90 or any(c not in _BECH32 for c in data_part):
        return None
    data = [_BECH32.index(c) for c in data_part]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    constant = _bech32_polymod(expanded + data)
    version, words = data[0], data[1:-6]
    if constant != (_BECH32_CONST if version == 0 else _BECH32M_CONST):
        return None
    acc, bits, program = 0, 0, bytearray()
    for word in words:
        acc, bits = (acc << 5) | word, bits + 5
        if bits >= 8:
            bits -= 8
            program.append((acc >> bits) & 0xFF)
    if bits >= 5 or (acc & ((1 << bits) - 1)):
        return None
    return version, bytes(program)


def is_mainnet_address(value: str) -> bool:
    """P2PKH, P2SH, P2WPKH, P2WSH and P2TR addresses of Bitcoin's main network."""
    payload = _base58check(value)
    if payload is not None:
        return len(payload) == 21 and payload[0] in (0x00, 0x05)
    program = _segwit_program(value, "bc")
    if program is None:
        return False
    version, witness = program
    return (version == 0 and len(witness) in (20, 32)) or (version == 1 and len(witness) == 32)


def on_chain_address(value: str) -> Any:
    return value if is_mainnet_address(value) else Refused("Invalid value for OnChainAddress")


# ---- scalars that throw instead of returning (SafeInt) and that take odd inputs ------------


def _coerce_safe_int(value: Any) -> int:
    """SafeInt throws (a GraphQL error at variable coercion) where the other scalars return a refusal."""
    if value == "":
        raise GraphQLError("SafeInt cannot represent non 53-bit signed integer value: (empty string)")
    if not is_js_number(value) or abs(value) > MAX_SAFE_INTEGER:
        raise GraphQLError(f"SafeInt cannot represent non 53-bit signed integer value: {js_string(value)}")
    if not is_js_integer(value):
        raise GraphQLError(f"SafeInt cannot represent non-integer value: {js_string(value)}")
    return int(value)


def _safe_int_literal(node: ValueNode, _variables: Any = None) -> int | None:
    if isinstance(node, IntValueNode) and abs(int(node.value)) <= MAX_SAFE_INTEGER:
        return int(node.value)
    return None


def _signed_amount(value: str) -> Any:
    return value if is_js_integer(js_parse_int(value)) else Refused("Invalid value for SignedAmount")


def _signed_amount_literal(node: ValueNode, _variables: Any = None) -> Any:
    if isinstance(node, IntValueNode):
        return _signed_amount(node.value)
    return Refused("Invalid type for SignedAmount")


def _display_major_amount(value: str) -> Any:
    return value if SIGNED_DISPLAY_AMOUNT.match(value) else Refused("Invalid value for SignedDisplayMajorAmount")


def _display_major_amount_literal(node: ValueNode, _variables: Any = None) -> Any:
    if isinstance(node, IntValueNode | FloatValueNode):
        return _display_major_amount(node.value)
    return Refused("Invalid type for SignedDisplayMajorAmount")


def _timestamp_value(value: Any) -> Any:
    """Blink's Timestamp reads a string as `new Date(value)` and never checks it."""
    return value if isinstance(value, str) else Refused("Invalid type for Date")


def _timestamp_literal(node: ValueNode, _variables: Any = None) -> Any:
    if not isinstance(node, StringValueNode):
        return Refused("Invalid type for Date")
    millis = js_parse_int(node.value)
    return datetime.fromtimestamp(millis / 1000, UTC) if is_js_integer(millis) else node.value


def _uuid(message: str) -> Check:
    return matching(UUID, message)


SCALARS: dict[str, ScalarRules] = {
    "SatAmount": amount_scalar("SatAmount", MAX_SATS, truncate_numbers=True),
    "CentAmount": amount_scalar("CentAmount", MAX_CENTS, truncate_numbers=False),
    "Minutes": amount_scalar("Minutes", None, truncate_numbers=False),
    "Seconds": amount_scalar("Seconds", None, truncate_numbers=False),
    "SafeInt": ScalarRules(_coerce_safe_int, _safe_int_literal),
    "SignedAmount": ScalarRules(
        lambda v: _signed_amount(v) if isinstance(v, str) else Refused("Invalid type for SignedAmount"),
        _signed_amount_literal),
    "SignedDisplayMajorAmount": ScalarRules(
        lambda v: _display_major_amount(v) if isinstance(v, str) else Refused(
            "Invalid type for SignedDisplayMajorAmount"),
        _display_major_amount_literal),
    "Timestamp": ScalarRules(_timestamp_value, _timestamp_literal),
    "WalletId": string_scalar("WalletId", _uuid("Invalid value for WalletId")),
    "ContactId": string_scalar("ContactId", _uuid("Invalid value for ContactId")),
    "TelegramPassportNonce": string_scalar("TelegramPassportNonce", _uuid("Invalid Telegram Passport nonce")),
    "PaymentHash": string_scalar("PaymentHash", matching(SHA256_HEX, "Invalid value for PaymentHash")),
    "LnPaymentPreImage": string_scalar("LnPaymentPreImage", matching(SHA256_HEX, "Invalid value for LnPaymentPreImage")),
    "LnPaymentSecret": string_scalar("LnPaymentSecret", matching(SHA256_HEX, "Invalid value for LnPaymentSecret")),
    "OnChainTxHash": string_scalar("OnChainTxHash", matching(SHA256_HEX, "Invalid value for OnChainTxHash")),
    "LnPaymentRequest": string_scalar(
        "LnPaymentRequest", matching(LN_PAYMENT_REQUEST, "Invalid value for LnPaymentRequest")),
    "TxExternalId": string_scalar("TxExternalId", matching(EXTERNAL_ID, INVALID_EXTERNAL_ID)),
    "OneTimeAuthCode": string_scalar(
        "OneTimeAuthCode", matching(ONE_TIME_AUTH_CODE, "Invalid value for OneTimeAuthCode")),
    "Username": string_scalar("Username", username),
    "Phone": string_scalar("Phone", phone),
    "EmailAddress": string_scalar("Email", email),
    "ContactHandle": string_scalar("Handle", contact_handle),
    "ContactAlias": string_scalar(
        "ContactAlias", display_name("Invalid value for ContactAlias"), type_message="Invalid type for AuthToken"),
    "ContactDisplayName": string_scalar("ContactDisplayName", display_name("Invalid value for ContactDisplayName")),
    "CountryCode": string_scalar("CountryCode", country_code),
    "DisplayCurrency": string_scalar("DisplayCurrency", display_currency, literal_message="Invalid type for Currency"),
    "EndpointUrl": string_scalar("EndpointUrl", endpoint_url),
    "Feedback": string_scalar("Feedback", feedback),
    "Hex32Bytes": string_scalar("Hex32Bytes", hex32),
    "Language": string_scalar("Language", language),
    "Memo": string_scalar("Memo", memo),
    "NotificationCategory": string_scalar("NotificationCategory", str),
    "OnChainAddress": string_scalar("OnChainAddress", on_chain_address),
}

OUTPUT_ONLY = frozenset({"AuthToken", "EmailRegistrationId", "EndpointId", "TotpCode", "TotpRegistrationId", "TotpSecret"})
"""Scalars Blink defines with `serialize` alone: graphql-js's default parsing accepts any value."""
