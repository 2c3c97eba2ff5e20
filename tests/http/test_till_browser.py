"""A café's day in headless Chromium: the owner creates a till, a phone opens its link with no key and sells,
the customer picks the tip, the team is paid; receipt, installable app, offline and revoked tills."""

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.http.conftest import DESKTOP, OPERATOR_TOKEN, PHONE, WEB_SETTINGS, new_page, screenshot
from tests.services.conftest import World

pytestmark = pytest.mark.settings(**WEB_SETTINGS)

NARROW: list[ViewportSize] = [{"width": 360, "height": 740}, {"width": 430, "height": 932}]


async def assert_fits(page: Page, what: str) -> None:
    """No horizontal scrolling: the page is no wider than its viewport."""
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{what} is {widths[0]} px wide in a {widths[1]} px viewport"


async def owner_creates_till(page: Page, world: World) -> str:
    """The owner signs in to the dashboard and creates a till; the till link it shows once."""
    await page.goto("/dashboard")
    await page.fill("#token", OPERATOR_TOKEN)
    await page.click("button[type=submit]")
    await page.click("#tills-link")
    await page.fill("#name", "Front counter")
    await page.fill("#api_key", world.merchant.api_key)
    await page.select_option("#display_currency", "EUR")
    await page.fill("#team", "alice 60\nbob 40")
    await page.click("#create-till button[type=submit]")
    await expect(page.locator("#new-till")).to_contain_text("Till “Front counter” is ready")
    await expect(page.locator("#till-list")).to_contain_text("@alice 60.0 %, @bob 40.0 %")
    return await page.input_value("#till-link")


async def test_a_till_sells_with_a_customer_chosen_tip_split_across_its_team(world: World, browser: Browser) -> None:
    owner, owner_errors = await new_page(browser, world.service.url, DESKTOP)
    link = await owner_creates_till(owner, world)
    await screenshot(owner, "till-owner-created-desktop")

    till, errors = await new_page(browser, world.service.url, PHONE)
    await till.goto(link)
    await expect(till.locator("#keypad")).to_be_visible()
    assert "#" not in till.url, "the token leaves the address bar once the device is paired"
    await expect(till.locator("#charge")).to_be_in_viewport()
    for key in "1250":
        await till.click(f"#keypad .key[data-key='{key}']")
    await expect(till.locator("#amount")).to_have_text("€12.50")
    await expect(till.locator("#amount-sats")).to_contain_text("sats")
    await assert_fits(till, "the till's keypad")
    await screenshot(till, "till-amount-phone")

    await till.click("#charge")
    await expect(till.locator("#tip-choices button")).to_have_count(4)
    await expect(till.locator("#step-pay")).to_be_hidden()
    await expect(till.locator("#tip-team")).to_have_text("Tips are shared by @alice, @bob.")
    await screenshot(till, "till-tip-phone")
    await till.get_by_role("button", name="Tip 15 %, €1.88").click()
    await expect(till.locator("#qr svg")).to_be_visible()
    await expect(till.locator("#pay-fiat")).to_have_text("€14.38")
    await expect(till.locator("#pay-sats")).to_contain_text("sats · incl. €1.88 tip")
    await expect(till.locator("#countdown")).not_to_have_text("–")
    await assert_fits(till, "the QR step")
    await screenshot(till, "till-qr-phone")

    payment_request = await till.get_attribute("#open-wallet", "href")
    assert payment_request and payment_request.startswith("lightning:lnbc")
    paid = await world.pay(payment_request.removeprefix("lightning:"))
    assert paid.status_code == 200, paid.text
    await expect(till.locator("#step-paid")).to_be_visible(timeout=30_000)
    await expect(till.locator("#paid-fiat")).to_have_text("€14.38")
    await expect(till.locator("#paid-tips")).to_have_text("Tips sent to @alice, @bob.", timeout=30_000)
    assert await till.locator("audio#paid-sound").get_attribute("src") == "/static/paid.wav"
    await screenshot(till, "till-paid-phone")
    tip = (await world.balance(world.recipients["alice"]), await world.balance(world.recipients["bob"]))
    assert tip[0] > 0 and tip[1] > 0 and abs(tip[0] * 40 - tip[1] * 60) <= 100

    receipt_url = await till.get_attribute("#receipt-link", "href")
    receipt, _ = await new_page(browser, world.service.url, {"width": 360, "height": 740})
    await receipt.goto(str(receipt_url))
    await expect(receipt.locator("#receipt")).to_contain_text("Front counter")
    await expect(receipt.locator("#receipt")).to_contain_text("14.38 EUR")
    await expect(receipt.locator("#receipt-tips")).to_contain_text("@alice (60.0 %)")
    await expect(receipt.locator("#receipt-tips")).to_contain_text("@bob (40.0 %)")
    await assert_fits(receipt, "the receipt")
    await screenshot(receipt, "till-receipt-phone")

    await till.click("#new-sale")
    await expect(till.locator("#amount")).to_have_text("€0.00")
    await till.context.set_offline(True)
    await expect(till.locator("#offline")).to_be_visible()
    await expect(till.locator("#charge")).to_be_disabled()
    await screenshot(till, "till-offline-phone")
    await till.context.set_offline(False)
    await expect(till.locator("#charge")).to_be_enabled()

    await owner.goto("/dashboard")
    await expect(owner.locator("#payments-table")).to_contain_text("14.38 EUR")
    await expect(owner.locator("#payments-table time.local").first).not_to_contain_text("UTC")
    await owner.goto("/dashboard/tills")
    await owner.click(".revoke-form button")
    await expect(owner.locator("#till-list")).to_contain_text("closed")
    await till.reload()
    await expect(till.locator("#pair-error")).to_contain_text("closed by the owner")
    assert errors.messages == [] or all("403" in m for m in errors.messages), errors.messages
    assert owner_errors.messages == []


async def test_the_till_installs_as_an_app(world: World, browser: Browser) -> None:
    owner, _ = await new_page(browser, world.service.url, DESKTOP)
    link = await owner_creates_till(owner, world)
    till, errors = await new_page(browser, world.service.url, PHONE)
    await till.goto(link)
    await expect(till.locator("#keypad")).to_be_visible()
    manifest = await till.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())")
    assert manifest["start_url"] == "/till" and manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        response = await till.request.get(icon["src"])
        assert response.ok and response.headers["content-type"] == "image/png"
    scope = await till.evaluate("navigator.serviceWorker.ready.then((r) => r.active && r.scope)")
    assert scope == world.service.url.rstrip("/") + "/"
    assert errors.messages == []


async def test_no_page_is_wider_than_a_phone(world: World, browser: Browser) -> None:
    owner, _ = await new_page(browser, world.service.url, DESKTOP)
    link = await owner_creates_till(owner, world)
    async with world.http() as http:
        created = await world.create_invoice(
            http, baseAmount=1000, tipPercent=10,
            tipRecipients=[{"username": "alice", "share": 60}, {"username": "bob", "share": 40}])
        await world.pay(created["paymentRequest"])
        await world.wait_for_status(http, created["paymentHash"], {"completed"})
    ph = created["paymentHash"]
    for viewport in NARROW:
        page, _ = await new_page(browser, world.service.url, viewport)
        await page.goto("/")
        await assert_fits(page, f"the sign-in page at {viewport['width']} px")
        await page.goto(link)
        await expect(page.locator("#keypad")).to_be_visible()
        await expect(page.locator("#charge")).to_be_in_viewport()
        await assert_fits(page, f"the till at {viewport['width']} px")
        await page.goto(f"/receipt/{ph}")
        await assert_fits(page, f"the receipt at {viewport['width']} px")
        await page.goto("/dashboard/login")
        await page.fill("#token", OPERATOR_TOKEN)
        await page.click("button[type=submit]")
        await expect(page.locator("#payments-table")).to_be_visible()
        await assert_fits(page, f"the dashboard at {viewport['width']} px")
        await page.goto("/dashboard/tills")
        await assert_fits(page, f"the tills page at {viewport['width']} px")
        await page.goto(f"/dashboard/payments/{ph}")
        await expect(page.locator("#legs")).to_be_visible()
        await assert_fits(page, f"the payment page at {viewport['width']} px")
        legs_box = await page.locator("#legs").bounding_box()
        assert legs_box and legs_box["x"] + legs_box["width"] <= viewport["width"], "the legs table is not clipped"
        await screenshot(page, f"payment-{viewport['width']}")
