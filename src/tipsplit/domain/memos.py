"""Memos as the original BlinkPOS app wrote them, so wallets show the same text as before."""

from decimal import Decimal


def _percent(tip_percent: Decimal) -> str:
    return format(tip_percent.normalize(), "f")


def invoice_memo(base_sats: int, tip_percent: Decimal | None, total_sats: int, memo: str | None) -> str:
    """Memo of the POS invoice the customer pays."""
    if memo:
        return memo
    if tip_percent:
        return f"{base_sats} sats + {_percent(tip_percent)}% tip = {total_sats} sats"
    return f"{total_sats} sats"


def forward_memo(
    base_sats: int, tip_sats: int, tip_percent: Decimal | None, total_sats: int, recipients: list[str]
) -> str:
    """Memo of the base forwarded to the merchant: what was sold and where the tip went."""
    if not recipients:
        return f"BlinkPOS: {total_sats} sats"
    names = ", ".join(recipients)
    if tip_sats == 0:
        return f"BlinkPOS: {base_sats} sats | No tip (recipients: {names})"
    how = "split to" if len(recipients) > 1 else "to"
    percent = f"{_percent(tip_percent)}%" if tip_percent is not None else f"{tip_sats} sat"
    return f"BlinkPOS: {base_sats} + {percent} tip = {total_sats} | {tip_sats} sat tip {how} {names}"


def tip_memo(index: int, count: int, amount_sats: int) -> str:
    """Memo of one tip payment; numbered when the tip is split."""
    numbering = f" ({index}/{count})" if count > 1 else ""
    return f"BlinkPOS Tip{numbering}: {amount_sats} sats"
