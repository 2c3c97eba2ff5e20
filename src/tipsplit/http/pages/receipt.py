"""A sale's receipt: printable on a 58 or 80 mm receipt printer from the browser, and shareable as a link.

Public like the payment status (anyone holding the payment hash): amounts, the till's name, the tip
recipients' usernames and shares, and no wallet id, key or Blink error.
"""

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tipsplit.domain.models import HASH_RE
from tipsplit.domain.states import BASE_LEG
from tipsplit.http.deps import Records, TillService
from tipsplit.http.templating import templates
from tipsplit.services.invoicing import SAT_CURRENCIES
from tipsplit.services.tills import display_split

router = APIRouter(tags=["receipt"], include_in_schema=False)


@router.get("/receipt/{payment_hash}", response_class=HTMLResponse)
async def receipt(request: Request, payment_hash: str, pg: Records, tills: TillService) -> Response:
    ph = payment_hash.lower()
    payment = await pg.payments.get(ph) if HASH_RE.fullmatch(ph) else None
    if payment is None:
        return templates.TemplateResponse(request, "receipt.html", {"payment": None}, status_code=404)
    fiat = None
    if payment.display_currency not in SAT_CURRENCIES and payment.base_amount_display is not None:
        percent = payment.tip_percent or Decimal(0)
        fiat = display_split(payment.base_amount_display, percent, payment.display_currency)
    tips = [leg for leg in payment.legs if leg.leg != BASE_LEG]
    context = {
        "payment": payment, "fiat": fiat, "tips": tips, "till_name": await tills.store.sale_till(ph),
        "width": "58" if request.query_params.get("width") == "58" else "80",
    }
    return templates.TemplateResponse(request, "receipt.html", context)
