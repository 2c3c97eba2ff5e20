"""The POS page and the dashboard in headless Chromium, against a real service and the Blink simulator."""

import csv
import io
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.http.conftest import DESKTOP, OPERATOR_TOKEN, PHONE, WEB_SETTINGS, new_page, screenshot
from tests.services.conftest import World

FAILING_TIP: dict[str, Any] = {**WEB_SETTINGS, "max_leg_attempts": 2}


async def _sign_in(page: Page, world: World) -> None:
    await page.goto("/")
    await page.fill("#api_key", world.merchant.api_key)
    await page.click("button[type=submit]")
    await expect(page.locator("#keypad")).to_be_visible()
    await expect(page.locator("#base-username")).to_have_text("@merchant")


async def _set_recipients(page: Page, recipients: list[tuple[str, str]]) -> None:
    rows = page.locator("#recipient-list li")
    for index, (username, share) in enumerate(recipients):
        if await rows.count() <= index:
            await page.click("#add-recipient")
        await rows.nth(index).locator(".username").fill(username)
        await rows.nth(index).locator(".share").fill(share)


async def _charge(page: Page) -> str:
    """Press Charge and wait for the QR; the invoice text the customer would scan."""
    # The field being typed in is left first, as a phone's keyboard is closed before Charge is tapped: headless
    # Chromium may scroll the page between pressing and releasing a click that moves focus out of a number field.
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.click("#charge")
    await expect(page.locator("#qr svg")).to_be_visible()
    return await page.input_value("#payment-request")


@pytest.mark.settings(**WEB_SETTINGS)
async def test_a_full_sale_on_a_phone(world: World, browser: Browser) -> None:
    page, errors = await new_page(browser, world.service.url, PHONE)
    await _sign_in(page, world)
    await expect(page.locator("#currency")).to_have_value("BTC")
    await page.locator("#amount").click()
    await page.keyboard.type("10005")
    await page.keyboard.press("Backspace")
    await expect(page.locator("#amount")).to_have_text("1,000 sats")
    await page.get_by_role("radio", name="15 %").click()
    await _set_recipients(page, [("alice", "60"), ("bob", "40")])
    await expect(page.locator("#total-all")).to_have_text("1,150 sats")
    await screenshot(page, "pos-entry-phone")

    payment_request = await _charge(page)
    assert payment_request.startswith("lnbc")
    await expect(page.locator("#invoice-amount")).to_contain_text("1,150 sats")
    await expect(page.locator("#countdown")).not_to_have_text("–")
    await expect(page.locator("#progress")).to_contain_text("Waiting for payment")
    await screenshot(page, "pos-invoice-phone")

    paid = await world.pay(payment_request)
    assert paid.status_code == 200, paid.text
    done = page.locator("#done")
    await expect(done).to_be_visible(timeout=30_000)
    await expect(done).to_contain_text("Merchant: 1,000 sats forwarded")
    await expect(done).to_contain_text("@alice: 90 sats forwarded")
    await expect(done).to_contain_text("@bob: 60 sats forwarded")
    await screenshot(page, "pos-forwarded-phone")
    assert await world.balance(world.recipients["alice"]) == 90
    assert await world.balance(world.recipients["bob"]) == 60

    await page.keyboard.press("Enter")
    await expect(page.locator("#entry")).to_be_visible()
    await expect(page.locator("#amount")).to_have_text("0 sats")
    await page.reload()
    await expect(page.locator("#recipient-list li .username").nth(1)).to_have_value("bob")
    stored = await page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert world.merchant.api_key not in stored and "alice" in stored
    assert errors.messages == []


@pytest.mark.settings(**WEB_SETTINGS)
async def test_an_unknown_recipient_is_refused_before_any_invoice(world: World, browser: Browser) -> None:
    page, errors = await new_page(browser, world.service.url, PHONE)
    await _sign_in(page, world)
    await page.select_option("#currency", "JPY")
    await expect(page.locator("#amount")).to_have_text("¥0")
    for key in ("1", "5", "0", "0"):
        await page.click(f"#keypad .key[data-key='{key}']")
    await expect(page.locator("#amount")).to_have_text("¥1,500")
    await _set_recipients(page, [("nobody_here", "")])
    await page.get_by_role("radio", name="15 %").click()
    await page.click("#charge")
    await expect(page.locator("#error")).to_contain_text("Blink has no user named 'nobody_here' (tipRecipients)")
    await expect(page.locator("#invoice")).to_be_hidden()
    await screenshot(page, "pos-unknown-recipient-phone")
    await page.locator("#recipient-list li .username").first.fill("alice")
    await expect(page.locator("#error")).to_be_hidden()
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert errors.messages == [f"console: {refused}"], "only Chromium's note of the refused request"


@pytest.mark.settings(**FAILING_TIP)
async def test_a_sale_whose_tip_cannot_be_forwarded(world: World, browser: Browser) -> None:
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=world.recipients["bob"].wallet_id)
    page, errors = await new_page(browser, world.service.url, DESKTOP)
    await _sign_in(page, world)
    for key in "2000":
        await page.click(f"#keypad .key[data-key='{key}']")
    await expect(page.locator("#tip-presets [aria-checked='true']")).to_have_count(0)
    await expect(page.locator("#total-tip")).to_contain_text("(0 %)")
    await page.get_by_role("radio", name="10 %").click()
    await _set_recipients(page, [("alice", "50"), ("bob", "50")])
    await world.pay(await _charge(page))
    invoice = page.locator("#invoice")
    await expect(invoice).to_have_attribute("data-status", "failed", timeout=30_000)
    await expect(page.locator("#invoice-title")).to_have_text("Paid, but forwarding failed")
    note = page.locator("#status-note")
    await expect(note).to_contain_text("Not forwarded: @bob (the recipient could not be paid yet)")
    await expect(note).to_contain_text("stays failed until an operator retries it from the dashboard")
    await expect(note).not_to_contain_text("automatically")
    await expect(note).not_to_contain_text("retrying")
    await expect(page.locator("#progress")).to_contain_text("Merchant: 2,000 sats — forwarded")
    await expect(page.locator("#progress")).to_contain_text(
        "@bob: 100 sats — failed after 2 attempts — the recipient could not be paid yet")
    await screenshot(page, "pos-tip-failed-desktop")
    await page.click("#cancel")
    await expect(page.locator("#entry")).to_be_visible()
    assert errors.messages == []


async def _sale_by_api(world: World, tip_to: list[dict[str, Any]], base: int) -> dict[str, Any]:
    async with world.http() as http:
        created = await world.create_invoice(http, baseAmount=base, tipPercent=10, tipRecipients=tip_to)
        await world.pay(created["paymentRequest"])
        await world.wait_for_status(http, created["paymentHash"], {"completed", "failed"})
    return created


@pytest.mark.settings(**FAILING_TIP)
async def test_the_dashboard_shows_both_sales_and_exports_them(world: World, browser: Browser) -> None:
    ok = await _sale_by_api(world, [{"username": "alice", "share": 60}, {"username": "carol", "share": 40}], 1000)
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=world.recipients["bob"].wallet_id)
    bad = await _sale_by_api(world, [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}], 3000)

    page, errors = await new_page(browser, world.service.url, DESKTOP)
    await page.goto("/dashboard")
    await page.fill("#token", OPERATOR_TOKEN)
    await page.click("button[type=submit]")
    table = page.locator("#payments-table tbody tr")
    await expect(table).to_have_count(2)
    await expect(page.locator(f"tr[data-hash='{ok['paymentHash']}']")).to_contain_text("completed")
    await expect(page.locator(f"tr[data-hash='{bad['paymentHash']}']")).to_contain_text("failed")
    await expect(page.locator("#health")).to_contain_text("PostgreSQL")
    await expect(page.get_by_role("img", name="Last 24 hours: volume and tips per bucket")).to_be_visible()
    await expect(page.locator("section[aria-labelledby=h-leaders]")).to_contain_text("@alice")
    await screenshot(page, "dashboard-desktop")

    await page.select_option("#f-status", "failed")
    await page.click(".filters button[type=submit]")
    await expect(table).to_have_count(1)
    await expect(table.first).to_have_attribute("data-hash", bad["paymentHash"])
    await page.select_option("#f-status", "")
    await page.fill("#f-recipient", "carol")
    await page.click(".filters button[type=submit]")
    await expect(table).to_have_count(1)
    await expect(table.first).to_have_attribute("data-hash", ok["paymentHash"])
    await page.fill("#f-recipient", "")
    await page.click(".filters button[type=submit]")
    await expect(table).to_have_count(2)

    async with page.expect_download() as waiting:
        await page.click("#csv-link")
    download = await waiting.value
    rows = list(csv.DictReader(io.StringIO(open(await download.path(), encoding="utf-8").read())))
    by_hash = {row["payment_hash"]: row for row in rows}
    assert len(rows) == 2
    good = by_hash[ok["paymentHash"]]
    assert (good["status"], good["base_sats"], good["tip_sats"]) == ("completed", "1000", "100")
    assert good["base_status"] == "succeeded"
    assert (good["tip:alice"], good["tip:bob"], good["tip:carol"], good["unsettled_legs"]) == ("60", "0", "40", "")
    failed = by_hash[bad["paymentHash"]]
    assert (failed["status"], failed["base_sats"], failed["tip_sats"]) == ("failed", "3000", "300")
    assert failed["base_status"] == "succeeded"
    assert (failed["tip:alice"], failed["tip:bob"], failed["tip:carol"]) == ("150", "150", "0")
    assert failed["unsettled_legs"] == "tip:2 bob failed"

    await page.click(f"tr[data-hash='{bad['paymentHash']}'] a")
    legs = page.locator("#legs tbody tr")
    await expect(legs).to_have_count(3)
    await expect(legs.nth(2)).to_contain_text("@bob")
    await expect(legs.nth(2)).to_contain_text("failed")
    await expect(legs.nth(2)).to_contain_text("the recipient could not be paid yet")
    await expect(legs.nth(2)).to_contain_text("Unable to find a route for payment")
    await expect(page.locator(".timeline li").first).to_be_visible()
    await screenshot(page, "dashboard-payment-desktop")

    await world.sim_http.delete("/sim/faults")
    await page.click("#retry")
    await expect(page.locator("#retry-note")).to_have_text("Retried: every leg is paid now.")
    await expect(legs.nth(2)).to_contain_text("succeeded")
    await expect(page.locator("#retry-form")).to_have_count(0)
    await screenshot(page, "dashboard-payment-retried-desktop")
    assert await world.balance(world.recipients["bob"]) == 150

    await page.set_viewport_size(PHONE)
    await page.goto("/dashboard")
    await screenshot(page, "dashboard-phone")
    assert errors.messages == []


@pytest.mark.settings(**WEB_SETTINGS, max_leg_attempts=3, leg_retry_base_seconds=60)
async def test_a_retrying_tip_says_how_many_attempts_remain(world: World, browser: Browser) -> None:
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=world.recipients["bob"].wallet_id)
    page, errors = await new_page(browser, world.service.url, PHONE)
    await _sign_in(page, world)
    for key in "1000":
        await page.click(f"#keypad .key[data-key='{key}']")
    await page.get_by_role("radio", name="10 %").click()
    await _set_recipients(page, [("bob", "")])
    await world.pay(await _charge(page))
    progress = page.locator("#progress")
    await expect(progress).to_contain_text(
        "@bob: 100 sats — not paid yet, retrying (2 attempts left) — the recipient could not be paid yet",
        timeout=30_000)
    await expect(page.locator("#status-note")).to_have_text(
        "Paid. Not forwarded yet: @bob (the recipient could not be paid yet; retrying, 2 attempts left).")
    await expect(page.locator("#invoice")).to_have_attribute("data-status", "processing")
    await screenshot(page, "pos-tip-retrying-phone")
    assert errors.messages == []


@pytest.mark.settings(**WEB_SETTINGS)
async def test_a_page_on_another_site_cannot_sign_the_till_in_as_someone_else(world: World, browser: Browser) -> None:
    """The attack: a page the till's browser opens auto-submits a sign-in form with the attacker's key."""
    mallory = (await world.sim_http.post("/sim/accounts", json={"username": "mallory", "balance": 0})).json()
    page, _ = await new_page(browser, world.service.url, DESKTOP)
    await _sign_in(page, world)
    attack = (
        f'<form id="f" method="post" action="{world.service.url}/signin">'
        f'<input name="api_key" value="{mallory["apiKey"]}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    await page.context.route("http://attacker.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=attack))
    await page.goto("http://attacker.test/")
    await page.wait_for_url(f"{world.service.url}/**")
    await page.goto("/")
    await expect(page.locator("#base-username")).to_have_text("@merchant")
    await expect(page.locator("#base-account")).not_to_contain_text("mallory")
