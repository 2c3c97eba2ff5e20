"""Fixed, settable BTC prices per display currency, answered the way Blink's realtimePrice does.

Blink quotes the price of one sat in the currency's *minor* unit as base / 10^offset,
so a currency's fraction digits matter (USD cents vs. whole yen). Prices are
exact fractions: tests can compute expected conversions without rounding drift.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

PRICE_OFFSET = 12
SATS_PER_BTC = 100_000_000


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    symbol: str
    flag: str
    fraction_digits: int


@dataclass(frozen=True)
class Quote:
    """base / 10^offset minor units of a currency."""

    base: int
    offset: int


_DEFAULTS: tuple[tuple[Currency, int], ...] = (
    (Currency("USD", "US Dollar", "$", "🇺🇸", 2), 100_000),
    (Currency("EUR", "Euro", "€", "🇪🇺", 2), 92_000),
    (Currency("GBP", "British Pound", "£", "🇬🇧", 2), 79_000),
    (Currency("CHF", "Swiss Franc", "CHF", "🇨🇭", 2), 88_000),
    (Currency("CAD", "Canadian Dollar", "$", "🇨🇦", 2), 137_000),
    (Currency("BRL", "Brazilian Real", "R$", "🇧🇷", 2), 550_000),
    (Currency("ZAR", "South African Rand", "R", "🇿🇦", 2), 1_850_000),
    (Currency("KES", "Kenyan Shilling", "KSh", "🇰🇪", 2), 12_900_000),
    (Currency("NGN", "Nigerian Naira", "₦", "🇳🇬", 2), 155_000_000),
    (Currency("JPY", "Japanese Yen", "¥", "🇯🇵", 0), 15_000_000),
    (Currency("KRW", "South Korean Won", "₩", "🇰🇷", 0), 135_000_000),
    (Currency("CLP", "Chilean Peso", "$", "🇨🇱", 0), 95_000_000),
    (Currency("XOF", "West African CFA Franc", "CFA", "🇸🇳", 0), 60_000_000),
)


class UnknownCurrency(KeyError):
    """No price is set for this display currency."""


class PriceBook:
    """BTC price in major units per currency, plus each currency's metadata."""

    def __init__(self) -> None:
        self._currencies = {c.code: c for c, _ in _DEFAULTS}
        self._btc_prices = {c.code: Fraction(p) for c, p in _DEFAULTS}

    def currencies(self) -> list[Currency]:
        return list(self._currencies.values())

    def currency(self, code: str) -> Currency:
        try:
            return self._currencies[code.upper()]
        except KeyError:
            raise UnknownCurrency(code) from None

    def btc_price(self, code: str) -> Fraction:
        self.currency(code)
        return self._btc_prices[code.upper()]

    def set_price(self, code: str, btc_price: Fraction, fraction_digits: int | None = None) -> Currency:
        """Set one BTC's price in major units; a new currency needs its fraction digits."""
        code = code.upper()
        if btc_price <= 0:
            raise ValueError("btcPrice must be positive")
        existing = self._currencies.get(code)
        if fraction_digits is not None:
            digits = fraction_digits
        elif existing is not None:
            digits = existing.fraction_digits
        else:
            raise ValueError(f"{code} is a new currency: give its fractionDigits")
        if not 0 <= digits <= 8:
            raise ValueError("fractionDigits must be between 0 and 8")
        currency = Currency(code, existing.name if existing else code, existing.symbol if existing else code,
                            existing.flag if existing else "", digits)
        self._currencies[code] = currency
        self._btc_prices[code] = btc_price
        return currency

    def sat_price(self, code: str) -> Quote:
        """Price of one sat in the currency's minor unit."""
        minor_per_sat = self.btc_price(code) * 10 ** self.currency(code).fraction_digits / SATS_PER_BTC
        return Quote(round(minor_per_sat * 10**PRICE_OFFSET), PRICE_OFFSET)

    def usd_cent_price(self, code: str) -> Quote:
        """Price of one US cent in the currency's minor unit."""
        minor_per_cent = (self.btc_price(code) * 10 ** self.currency(code).fraction_digits
                          / (self.btc_price("USD") * 100))
        return Quote(round(minor_per_cent * 10**PRICE_OFFSET), PRICE_OFFSET)

    def sats_to_display(self, sats: int, code: str) -> str:
        """A sat amount in major units of the currency, as Blink's display-amount strings."""
        currency = self.currency(code)
        major = Fraction(sats) * self.btc_price(code) / SATS_PER_BTC
        return f"{float(major):.{currency.fraction_digits}f}"

    def cents_per_sat(self) -> Fraction:
        """US cents one sat buys at the USD price `realtimePrice` serves."""
        return self.btc_price("USD") * 100 / SATS_PER_BTC

    def sats_for_cents(self, cents: int) -> int:
        """Sats a USD invoice of `cents` asks for: enough to buy every cent (rounded up)."""
        return math.ceil(cents / self.cents_per_sat())

    def cents_for_sats(self, sats: int) -> int:
        """Cents `sats` buy for a USD wallet (rounded down; 0 means less than a cent)."""
        return math.floor(sats * self.cents_per_sat())

    def cents_to_display(self, cents: int, code: str) -> str:
        """A cent amount in major units of the currency, as Blink's display-amount strings."""
        currency = self.currency(code)
        major = Fraction(cents, 100) * self.btc_price(code) / self.btc_price("USD")
        return f"{float(major):.{currency.fraction_digits}f}"

    def to_display(self, amount: int, wallet_currency: str, code: str) -> str:
        """A wallet amount (sats of a BTC wallet, cents of a USD wallet) in major units of `code`."""
        if wallet_currency == "USD":
            return self.cents_to_display(amount, code)
        return self.sats_to_display(amount, code)
