"""The pages' server routes over plain HTTP: sign-in, cookies, the key's secrecy, operator access, CSV."""

import base64
import csv
import io
import zlib

import httpx
import pytest

from tests.http.conftest import OPERATOR_TOKEN, WEB_SETTINGS, form_token, sign_in_merchant, sign_in_operator
from tests.services.conftest import World

pytestmark = pytest.mark.settings(**WEB_SETTINGS)


def _set_cookie(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers
    return headers[0]


def _cookie_payload(value: str) -> bytes:
    """What an itsdangerous cookie carries, decoded as anyone holding the cookie could."""
    body = value.split(".")[1] if value.startswith(".") else value.split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return zlib.decompress(raw) if value.startswith(".") else raw


async def test_sign_in_refuses_a_key_blink_refuses(world: World) -> None:
    async with world.http() as http:
        token = await form_token(http)
        response = await http.post("/signin", data={"api_key": "blink_not_a_real_key", "csrf_token": token})
        assert response.status_code == 401
        assert "Blink refused this API key" in response.text
        assert "tipsplit_pos" not in response.headers.get("set-cookie", "")
        assert (await http.get("/")).text.count('id="api_key"') == 1


async def test_session_cookie_is_httponly_samesite_and_holds_only_ciphertext(world: World) -> None:
    async with world.http() as http:
        token = await form_token(http)
        response = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": token})
        assert response.status_code == 303
        header = _set_cookie(response, "tipsplit_pos")
        flags = {part.strip().lower() for part in header.split(";")[1:]}
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        value = header.split(";")[0].split("=", 1)[1].strip('"')
        payload = _cookie_payload(value)
        assert world.merchant.api_key.encode() not in payload and b"enc:v1:" in payload
        page = await http.get("/")
        assert page.status_code == 200 and 'id="keypad"' in page.text


async def test_a_tampered_or_foreign_cookie_is_signed_out(world: World) -> None:
    async with world.http() as http:
        await sign_in_merchant(http, world)
        value = http.cookies["tipsplit_pos"]
        http.cookies.set("tipsplit_pos", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
        assert 'id="api_key"' in (await http.get("/")).text
        response = await http.post("/pos/invoice", json={"amount": "100"})
        assert response.status_code == 401


async def test_the_key_never_leaves_the_server_in_clear(world: World) -> None:
    key = world.merchant.api_key
    async with world.http() as http:
        token = await form_token(http)
        seen: list[httpx.Response] = [await http.post("/signin", data={"api_key": key, "csrf_token": token})]
        http.headers["x-csrf-token"] = token
        seen.append(await http.get("/"))
        seen.append(await http.get("/pos/currency/USD"))
        invoice = await http.post(
            "/pos/invoice",
            json={"displayCurrency": "USD", "amount": "3.50", "tipPercent": 20,
                  "recipients": [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}]},
        )
        assert invoice.status_code == 200, invoice.text
        seen.append(invoice)
        payment_hash = invoice.json()["paymentHash"]
        await world.pay(invoice.json()["paymentRequest"])
        await world.wait_for_status(http, payment_hash, {"completed"})
        headers = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
        for path in ("/dashboard", "/dashboard/payments", f"/dashboard/payments/{payment_hash}",
                     "/dashboard/health", "/dashboard/export.csv", f"/api/payment-status/{payment_hash}"):
            seen.append(await http.get(path, headers=headers))
        for response in seen:
            assert response.status_code < 400, (response.url, response.status_code)
            assert key not in response.text, response.url
            assert key not in str(response.headers), response.url
        assert all(key not in value for value in http.cookies.values())


async def test_invoice_route_shows_the_create_invoice_errors(world: World) -> None:
    async with world.http() as http:
        token = await form_token(http)
        refused = await http.post("/pos/invoice", json={"amount": "100"}, headers={"x-csrf-token": token})
        assert refused.status_code == 401
        await sign_in_merchant(http, world)
        unknown = await http.post(
            "/pos/invoice", json={"amount": "1000", "tipPercent": 10, "recipients": [{"username": "nobody_here"}]}
        )
        assert unknown.status_code == 400
        assert unknown.json() == {"error": "Blink has no user named 'nobody_here'", "field": "tipRecipients"}
        fractional = await http.post("/pos/invoice", json={"amount": "10.5"})
        assert fractional.status_code == 400 and fractional.json()["field"] == "amount"
        zero_decimal = await http.post("/pos/invoice", json={"displayCurrency": "JPY", "amount": "1500"})
        assert zero_decimal.status_code == 200, zero_decimal.text
        too_fine = await http.post("/pos/invoice", json={"displayCurrency": "JPY", "amount": "1500.5"})
        assert too_fine.status_code == 400 and too_fine.json()["field"] == "baseAmountDisplay"
        jpy = (await http.get("/pos/currency/JPY")).json()
        assert jpy["fractionDigits"] == 0 and jpy["satsPerMinorUnit"] > 0
        assert (await http.get("/pos/currency/BTC")).json()["fractionDigits"] == 0


async def test_base_goes_only_to_a_wallet_of_the_signed_in_account(world: World) -> None:
    async with world.http() as http:
        await sign_in_merchant(http, world)
        token = await form_token(http)
        foreign = await http.post("/pos/wallet", data={"wallet_id": world.recipients["bob"].wallet_id,
                                                       "csrf_token": token})
        assert foreign.status_code == 403 and foreign.json()["field"] == "walletId"
        own = await http.post("/pos/wallet", data={"wallet_id": world.merchant.wallet_id, "csrf_token": token})
        assert own.status_code == 303


async def test_dashboard_refuses_without_the_operator_token(world: World) -> None:
    async with world.http() as http:
        for path in ("/dashboard", "/dashboard/payments/" + "0" * 64):
            response = await http.get(path)
            assert (response.status_code, response.headers["location"]) == (303, "/dashboard/login"), path
        for path in ("/dashboard/payments", "/dashboard/health", "/dashboard/export.csv"):
            response = await http.get(path)
            assert response.status_code == 401, path
            assert "Payments" not in response.text
        login = await http.get("/dashboard/login")
        assert login.status_code == 200 and 'id="token"' in login.text
        wrong = await sign_in_operator(http, "guess")
        assert wrong.status_code == 401 and "tipsplit_operator" not in wrong.headers.get("set-cookie", "")
        assert (await http.get("/dashboard/health", headers={"authorization": "Bearer guess"})).status_code == 401
        right = await sign_in_operator(http)
        assert right.status_code == 303
        flags = {p.strip().lower() for p in _set_cookie(right, "tipsplit_operator").split(";")[1:]}
        assert "httponly" in flags and "samesite=strict" in flags
        assert OPERATOR_TOKEN not in _set_cookie(right, "tipsplit_operator")
        assert (await http.get("/dashboard")).status_code == 200
        await http.post("/dashboard/logout", data={"csrf_token": await form_token(http, "/dashboard")})
        assert (await http.get("/dashboard")).status_code == 303


async def test_csv_has_base_and_tip_columns_and_a_column_per_recipient(world: World) -> None:
    async with world.http() as http:
        await sign_in_merchant(http, world)
        paid = (await http.post("/pos/invoice", json={
            "amount": "2000", "tipPercent": 10,
            "recipients": [{"username": "alice", "share": 75}, {"username": "carol", "share": 25}]})).json()
        unpaid = (await http.post("/pos/invoice", json={"amount": "500"})).json()
        await world.pay(paid["paymentRequest"])
        await world.wait_for_status(http, paid["paymentHash"], {"completed"})
        response = await http.get("/dashboard/export.csv", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "created_at", "paid_at", "payment_hash", "status", "display_currency", "total_sats", "base_sats",
        "tip_sats", "tip_percent", "merchant_wallet_id", "base_status", "tip:alice", "tip:carol", "unsettled_legs",
        "base_currency", "currency:alice", "currency:carol",
    ]
    by_hash = {row["payment_hash"]: row for row in rows}
    assert len(rows) == 2
    done = by_hash[paid["paymentHash"]]
    assert (done["status"], done["total_sats"]) == ("completed", "2200")
    assert (done["base_sats"], done["tip_sats"]) == ("2000", "200")
    assert (done["tip:alice"], done["tip:carol"], done["base_status"]) == ("150", "50", "succeeded")
    assert done["unsettled_legs"] == ""
    assert (done["base_currency"], done["currency:alice"], done["currency:carol"]) == ("BTC", "BTC", "BTC")
    waiting = by_hash[unpaid["paymentHash"]]
    assert (waiting["status"], waiting["base_sats"], waiting["tip_sats"]) == ("pending", "500", "0")
    assert (waiting["tip:alice"], waiting["tip:carol"]) == ("0", "0")
    assert waiting["unsettled_legs"] == "base merchant pending"
    assert (waiting["base_currency"], waiting["currency:alice"], waiting["currency:carol"]) == ("BTC", "", "")
