"""The Jinja2 environment of the pages, with the few filters they share."""

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from tipsplit.domain.records import PaymentRecord
from tipsplit.services.invoicing import SAT_CURRENCIES
from tipsplit.services.tills import display_split

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


def sats(value: int | None) -> str:
    """Thousands-separated integer sats; amounts are never shown as floats."""
    return "–" if value is None else f"{value:,}"


def when(value: datetime | None) -> Markup:
    """A moment for the viewer's own time zone (static/local-time.js rewrites it); UTC to the second without JS."""
    if value is None:
        return Markup("–")
    utc = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time class="local" datetime="{}" title="{}">{}</time>').format(value.isoformat(), utc, utc)


def fiat(payment: PaymentRecord) -> str | None:
    """A sale's total in the display currency it was rung up in ('14.38 EUR'), or None for a sats sale."""
    if payment.display_currency in SAT_CURRENCIES or payment.base_amount_display is None:
        return None
    split = display_split(payment.base_amount_display, payment.tip_percent or Decimal(0), payment.display_currency)
    return f"{split['total']} {payment.display_currency}"


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["sats"] = sats
templates.env.filters["when"] = when
templates.env.filters["fiat"] = fiat
