"""The web pages against a real service and simulator (the service suite's `world`), and a headless Chromium.

Debian's `chromium` is installed here with apt-get when it is missing; only
if that cannot be done are the browser tests skipped, with the reason shown.
"""

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from tests.services.conftest import World, world  # noqa: F401  (the fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}

SESSION_SECRET = "web-test-session-secret-0123456789abcdef"
OPERATOR_TOKEN = "web-test-operator-token"
WEB_SETTINGS: dict[str, Any] = {"session_secret": SESSION_SECRET, "operator_token": OPERATOR_TOKEN}


def _install_chromium() -> str | None:
    """Install Debian's chromium if it is missing; the reason it cannot be had, or None."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium is not installed and apt-get cannot be run as root here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took longer than 15 minutes"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    return None if CHROMIUM.exists() else "apt-get installed chromium but /usr/bin/chromium is absent"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = _install_chromium()
    if reason is not None:
        pytest.skip(f"browser tests skipped: {reason}")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class PageErrors:
    """Console errors and uncaught exceptions of a page; a test ends by asserting there were none."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")


async def new_page(browser: Browser, base_url: str, viewport: ViewportSize) -> tuple[Page, PageErrors]:
    """A fresh browser context (own cookies and storage) at a viewport, watching for console errors."""
    context = await browser.new_context(base_url=base_url, viewport=viewport, accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page, PageErrors(page)


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]*)"')


async def form_token(http: httpx.AsyncClient, page: str = "/") -> str:
    """The CSRF token a page's forms carry (its cookie lands in the client's jar)."""
    response = await http.get(page)
    match = CSRF_INPUT.search(response.text)
    assert match and match.group(1), f"no CSRF token on {page}: {response.status_code}"
    return match.group(1)


async def sign_in_merchant(http: httpx.AsyncClient, world: World) -> None:
    """Sign an HTTP client in as the world's merchant, as the sign-in form does (CSRF token included).

    The client keeps the session cookie and sends the page's token as `X-CSRF-Token` from then on, as pos.js does.
    """
    token = await form_token(http, "/")
    response = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": token})
    assert response.status_code == 303, response.text
    http.headers["x-csrf-token"] = token


async def sign_in_operator(http: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> httpx.Response:
    """POST the dashboard's login form with its CSRF token."""
    form = {"token": token, "csrf_token": await form_token(http, "/dashboard/login")}
    return await http.post("/dashboard/login", data=form)
