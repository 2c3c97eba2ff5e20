"""The till as an installable web app: its manifest, and a service worker that keeps the app shell offline.

The service worker is served from the root so that its scope covers `/till`; it never caches an API answer,
so an offline till shows that it is offline instead of an old sale.
"""

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from tipsplit.http.templating import STATIC_DIR

router = APIRouter(tags=["app"], include_in_schema=False)

MANIFEST = {
    "name": "tipsplit till",
    "short_name": "Till",
    "description": "Take Lightning payments and share the tips with the team.",
    "start_url": "/till",
    "scope": "/",
    "display": "standalone",
    "orientation": "portrait",
    "background_color": "#f5f6f8",
    "theme_color": "#1b1f24",
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
        {"src": "/static/icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png",
         "purpose": "maskable"},
    ],
}


@router.get("/manifest.webmanifest")
async def manifest() -> JSONResponse:
    return JSONResponse(MANIFEST, media_type="application/manifest+json")


@router.get("/sw.js")
async def service_worker() -> FileResponse:
    """From the root, so the worker may control /till; revalidated on every load so updates arrive at once."""
    return FileResponse(STATIC_DIR / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})
