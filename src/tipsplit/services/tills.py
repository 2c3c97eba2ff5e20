"""Tills: devices that sell for one merchant wallet and one staff team without ever holding a Blink key.

The owner sets a till up once (name, Blink key, display currency, tip presets, team). The server checks the
key and the team with Blink, seals the key, and hands out a link whose random token is the till's only
credential; the token is stored hashed and can be revoked. A sale from a till names only an amount and a
tip percentage: the wallet, the key, the team and its shares come from the server's record of that till.
"""

import asyncio
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkAuthError, BlinkNotFound
from tipsplit.domain.models import MAX_RECIPIENTS, USERNAME_RE
from tipsplit.domain.split import equal_shares
from tipsplit.keyring import DecryptionError, KeyRing
from tipsplit.services.invoicing import SAT_CURRENCIES, InvoiceOrder
from tipsplit.services.merchant_keys import MerchantKeyPolicy, MerchantKeyRefused
from tipsplit.store.tills import TeamMember, Till, TillStore

CURRENCIES = ("BTC", "USD", "EUR", "GBP", "CHF", "CAD", "BRL", "ZAR", "KES", "NGN", "JPY", "KRW", "CLP", "XOF")
# Currencies without a minor unit (as Blink prices them); the others have cents.
WHOLE_UNIT_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "XOF"})
DEFAULT_PRESETS = (Decimal(10), Decimal(15), Decimal(20))
MAX_PRESETS = 6


class TillSetupError(ValueError):
    """The owner's till set-up cannot be used; `field` names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def token_hash(token: str) -> str:
    """What is stored of a till link's token: its SHA-256 (the token has 256 random bits, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def parse_presets(text: str) -> tuple[Decimal, ...]:
    """'10, 15, 20' → (10, 15, 20): 1 to 6 distinct percentages above 0 and at most 100, in the order given."""
    parts = [p.strip().rstrip("%").strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return DEFAULT_PRESETS
    try:
        values = [Decimal(p) for p in parts]
    except InvalidOperation:
        raise TillSetupError("tip_presets", f"tip presets must be numbers separated by commas, e.g. 10, 15, 20;"
                                            f" got {text.strip()[:60]!r}") from None
    bad = [str(v) for v in values if not v.is_finite() or v <= 0 or v > 100]
    if bad:
        raise TillSetupError("tip_presets", f"each tip preset must be above 0 and at most 100 %; got {', '.join(bad)}")
    unique = tuple(dict.fromkeys(Decimal(f"{v.normalize():f}") for v in values))
    if len(unique) > MAX_PRESETS:
        raise TillSetupError("tip_presets", f"at most {MAX_PRESETS} tip presets; got {len(unique)}")
    return unique


def parse_team(text: str) -> tuple[TeamMember, ...]:
    """One member a line, 'username share' (share in %, optional for all: blank means equal shares)."""
    rows: list[tuple[str, Decimal | None]] = []
    for number, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        words = line.replace("%", " ").split()
        if not words:
            continue
        name = words[0].removeprefix("@")
        if not USERNAME_RE.fullmatch(name):
            raise TillSetupError("team", f"line {number}: {name[:60]!r} is not a Blink username"
                                         " (3 to 50 letters, digits or _)")
        share: Decimal | None = None
        if len(words) > 1:
            try:
                share = Decimal(words[1])
            except InvalidOperation:
                raise TillSetupError("team", f"line {number}: the share of @{name} must be a number of percent,"
                                             f" got {words[1][:20]!r}") from None
            if not share.is_finite() or share <= 0 or share > 100:
                raise TillSetupError("team", f"line {number}: the share of @{name} must be above 0 and at most 100")
        rows.append((name, share))
    if not rows:
        raise TillSetupError("team", "name at least one Blink username to receive the tips")
    if len(rows) > MAX_RECIPIENTS:
        raise TillSetupError("team", f"at most {MAX_RECIPIENTS} people per team; got {len(rows)}")
    lowered = [name.lower() for name, _ in rows]
    if len(set(lowered)) != len(lowered):
        raise TillSetupError("team", "each person can be on the team once")
    given = [share for _, share in rows]
    if all(share is None for share in given):
        return tuple(TeamMember(name, share) for name, share in equal_shares([name for name, _ in rows]))
    if any(share is None for share in given):
        raise TillSetupError("team", "give a share for everyone on the team, or for nobody (equal shares)")
    total = sum((share for share in given if share is not None), Decimal(0))
    if total != 100:
        raise TillSetupError("team", f"the shares must add up to 100 %; they add up to {total.normalize():f} %")
    return tuple(TeamMember(name, share) for name, share in rows if share is not None)


def check_currency(code: str) -> str:
    code = code.strip().upper()
    if code not in CURRENCIES:
        raise TillSetupError("display_currency", f"unknown display currency {code[:10]!r}; one of {', '.join(CURRENCIES)}")
    return code


def fraction_digits(currency: str) -> int:
    return 0 if currency in WHOLE_UNIT_CURRENCIES or currency in SAT_CURRENCIES else 2


def display_split(base: Decimal, percent: Decimal, currency: str) -> dict[str, str]:
    """The sale in the display currency, as the customer reads it (the sats are the server's exact amounts)."""
    unit = Decimal(1).scaleb(-fraction_digits(currency))
    tip = (base * percent / 100).quantize(unit, rounding=ROUND_HALF_UP)
    return {"base": str(base.quantize(unit)), "tip": str(tip), "total": str((base + tip).quantize(unit))}


@dataclass
class TillKeyRotation:
    """What `tipsplit keys rotate` did to the tills' keys."""

    rotated: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)


async def rotate_till_keys(store: TillStore, keyring: KeyRing) -> TillKeyRotation:
    """Re-seal every till's merchant key under the newest encryption key, so the old one can be retired."""
    report = TillKeyRotation()
    for till_id, sealed in await store.sealed_keys():
        if not keyring.needs_rotation(sealed):
            continue
        try:
            fresh = keyring.rotate(sealed)
        except DecryptionError as exc:
            report.unreadable.append((till_id, str(exc)))
            continue
        if await store.replace_key(till_id, sealed, fresh):
            report.rotated += 1
    return report


@dataclass(frozen=True)
class NewTill:
    """A till just created and the one time its link token is known in clear."""

    till: Till
    token: str


class Tills:
    """The owner's actions on tills, and what a till may ask for."""

    def __init__(self, store: TillStore, pos: BlinkClient, keyring: KeyRing, merchant_keys: MerchantKeyPolicy) -> None:
        self.store = store
        self._pos = pos
        self._keyring = keyring
        self._merchant_keys = merchant_keys

    async def create(
        self, *, name: str, api_key: str, display_currency: str, tip_presets: str, team: str
    ) -> NewTill:
        """Check everything with Blink, then store the till with its key sealed; TillSetupError says what is wrong."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= 60:
            raise TillSetupError("name", "give the till a name of 1 to 60 characters, e.g. 'Front counter'")
        currency = check_currency(display_currency)
        presets = parse_presets(tip_presets)
        members = parse_team(team)
        api_key = api_key.strip()
        if not api_key:
            raise TillSetupError("api_key", "paste the merchant's READ-only Blink API key")
        merchant = self._pos.with_api_key(api_key)
        try:
            me, scopes = await asyncio.gather(merchant.me(), merchant.scopes())
        except BlinkAuthError:
            raise TillSetupError("api_key", "Blink refused this API key; copy it again from the Blink dashboard") from None
        try:
            self._merchant_keys.check(scopes, me.username)
        except MerchantKeyRefused as exc:
            raise TillSetupError("api_key", str(exc)) from None
        btc = [w.id for w in me.wallets if w.currency == "BTC"]
        if not btc:
            raise TillSetupError("api_key", "this Blink account has no BTC wallet to receive sales")
        await self.check_team(m.username for m in members)
        wallet = me.default_wallet_id if me.default_wallet_id in btc else btc[0]
        token = new_token()
        till = await self.store.create(
            name=name, token_hash=token_hash(token), api_key_encrypted=self._keyring.encrypt(api_key),
            merchant_username=me.username, wallet_id=wallet, display_currency=currency, tip_presets=presets,
            team=members,
        )
        return NewTill(till, token)

    async def update_setup(self, till_id: int, *, display_currency: str, tip_presets: str, team: str) -> None:
        currency = check_currency(display_currency)
        presets = parse_presets(tip_presets)
        members = parse_team(team)
        await self.check_team(m.username for m in members)
        if not await self.store.update_setup(till_id, display_currency=currency, tip_presets=presets, team=members):
            raise TillSetupError("till", "this till does not exist or has been revoked")

    async def check_team(self, usernames: Iterable[str]) -> None:
        """Every team member must be a Blink user, or the till would refuse every tipped sale."""
        names = list(usernames)

        async def exists(name: str) -> bool:
            try:
                await self._pos.account_default_wallet(name)
            except BlinkNotFound:
                return False
            return True

        found = await asyncio.gather(*(exists(name) for name in names))
        unknown = [name for name, ok in zip(names, found, strict=True) if not ok]
        if unknown:
            raise TillSetupError("team", f"Blink has no user named {', '.join(repr(n) for n in unknown)}")

    async def open(self, token: str) -> Till | None:
        """The till a link token stands for (revoked ones too), or None."""
        if not token or len(token) > 100:
            return None
        return await self.store.by_token_hash(token_hash(token))

    def order(self, till: Till, amount: Decimal, tip_percent: Decimal) -> InvoiceOrder:
        """A sale of this till: only amount and tip come from the device, the rest from the till's record."""
        if not tip_percent.is_finite() or not 0 <= tip_percent <= 100:
            raise TillSetupError("tipPercent", "the tip must be between 0 and 100 %")
        recipients = tuple((m.username, m.share) for m in till.team) if tip_percent > 0 else ()
        common = {
            "user_wallet_id": till.wallet_id, "api_key": self._keyring.decrypt(till.api_key_encrypted),
            "tip_percent": tip_percent, "recipients": recipients,
        }
        if till.display_currency in SAT_CURRENCIES:
            if amount != amount.to_integral_value():
                raise TillSetupError("amount", "an amount in sats must be a whole number")
            return InvoiceOrder(base_amount=int(amount), display_currency="BTC", **common)  # type: ignore[arg-type]
        return InvoiceOrder(display_currency=till.display_currency, base_amount_display=amount, **common)  # type: ignore[arg-type]
