"""The POS page and the operations dashboard, served by the service itself (no CDN, no build step)."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tipsplit.http.pages import dashboard, pos, pwa, receipt, till, till_admin
from tipsplit.http.templating import STATIC_DIR


def install_web(app: FastAPI) -> None:
    """Add the pages' routes and their vendored static files to the app."""
    app.include_router(pos.router)
    app.include_router(till_admin.router)
    app.include_router(dashboard.router)
    app.include_router(till.router)
    app.include_router(receipt.router)
    app.include_router(pwa.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
