"""The owner's tills on the dashboard: create a till (its link is shown once), change its team, close it.

Owner actions need the operator sign-in of the dashboard and, being POSTs, the CSRF token and origin check.
"""

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tipsplit.blink.errors import BlinkError
from tipsplit.http import csrf
from tipsplit.http.csrf import require_csrf
from tipsplit.http.deps import Operator, PageKeys, TillService
from tipsplit.http.pages.dashboard import _refused
from tipsplit.http.qr import link_qr_svg
from tipsplit.http.sessions import WebKeys
from tipsplit.services.tills import CURRENCIES, NewTill, Tills, TillSetupError

router = APIRouter(prefix="/dashboard/tills", tags=["tills"], include_in_schema=False)


async def _page(
    request: Request, keys: WebKeys, tills: Tills, *, status: int = 200, error: str | None = None,
    error_field: str | None = None, created: NewTill | None = None, form: dict[str, str] | None = None,
) -> Response:
    link = str(request.url_for("till_page")) + "#" + created.token if created else None
    context = {
        "sandbox": keys.sandbox, "tills": await tills.store.all(), "currencies": CURRENCIES, "error": error,
        "error_field": error_field, "created": created, "link": link, "link_qr": link_qr_svg(link) if link else None,
        "form": form or {}, "flagged": await tills.store.paid_after_cancel(),
    }
    return csrf.render(request, keys, "tills.html", context, status)


@router.get("", response_class=HTMLResponse)
async def tills_page(request: Request, keys: PageKeys, gate: Operator, tills: TillService) -> Response:
    if (refusal := await _refused(request, gate, page=True)) is not None:
        return refusal
    return await _page(request, keys, tills)


@router.post("", dependencies=[Depends(require_csrf)])
async def create_till(
    request: Request,
    keys: PageKeys,
    gate: Operator,
    tills: TillService,
    name: str = Form(max_length=200),
    api_key: str = Form(max_length=500),
    display_currency: str = Form(default="BTC", max_length=10),
    tip_presets: str = Form(default="10, 15, 20", max_length=200),
    team: str = Form(max_length=2000),
) -> Response:
    """Create a till; the answer shows its link and QR code once (only the link's hash is kept)."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    form = {"name": name, "display_currency": display_currency, "tip_presets": tip_presets, "team": team}
    try:
        created = await tills.create(
            name=name, api_key=api_key, display_currency=display_currency, tip_presets=tip_presets, team=team
        )
    except TillSetupError as exc:
        return await _page(request, keys, tills, status=400, error=str(exc), error_field=exc.field, form=form)
    except BlinkError:
        return await _page(request, keys, tills, status=503, form=form,
                           error="Blink could not be reached to check the key and the team; try again shortly.")
    return await _page(request, keys, tills, status=201, created=created)


@router.post("/{till_id}/team", dependencies=[Depends(require_csrf)])
async def update_team(
    request: Request, till_id: int, keys: PageKeys, gate: Operator, tills: TillService,
    display_currency: str = Form(max_length=10), tip_presets: str = Form(max_length=200),
    team: str = Form(max_length=2000),
) -> Response:
    """Who is on shift at this till and their shares, its presets and currency: used from the next sale on."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    try:
        await tills.update_setup(till_id, display_currency=display_currency, tip_presets=tip_presets, team=team)
    except TillSetupError as exc:
        return await _page(request, keys, tills, status=400 if exc.field != "till" else 404,
                           error=str(exc), error_field=exc.field)
    except BlinkError:
        return await _page(request, keys, tills, status=503, error="Blink could not be reached; try again shortly.")
    return RedirectResponse("/dashboard/tills", status_code=303)


@router.post("/{till_id}/revoke", dependencies=[Depends(require_csrf)])
async def revoke_till(request: Request, till_id: int, keys: PageKeys, gate: Operator, tills: TillService) -> Response:
    """Close a till: every device paired with it is refused from its next request on."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    if not await tills.store.revoke(till_id):
        return await _page(request, keys, tills, status=404, error="No open till with this number.")
    return RedirectResponse("/dashboard/tills", status_code=303)
