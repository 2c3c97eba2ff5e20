"""The operator's sign-in: an opaque session cookie kept server-side, a per-IP attempt limit, and Retry."""

import hashlib

import httpx
import pytest

from tests.http.conftest import OPERATOR_TOKEN, WEB_SETTINGS, form_token, sign_in_operator
from tests.services.conftest import World
from tipsplit.http.operator_auth import LOGIN_ATTEMPTS
from tipsplit.store.redis_client import connect_redis

pytestmark = pytest.mark.settings(**WEB_SETTINGS)


async def _redis_dump(world: World) -> str:
    client = connect_redis(world.settings.redis_url or "", decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match=f"{world.settings.redis_key_prefix}*")]
        values = [str(await client.get(k)) if await client.type(k) == "string" else "" for k in keys]
    finally:
        await client.aclose()
    return "\n".join(keys + values)


async def test_the_operator_cookie_is_a_random_id_that_signing_out_ends_everywhere(world: World) -> None:
    async with world.http() as http:
        assert (await sign_in_operator(http)).status_code == 303
        cookie = http.cookies["tipsplit_operator"]
        old_fingerprint = hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest()[:24]
        assert OPERATOR_TOKEN not in cookie and old_fingerprint not in cookie
        dump = await _redis_dump(world)
        assert cookie not in dump, "a copy of Redis holds no usable cookie"
        async with httpx.AsyncClient(base_url=world.service.url, cookies={"tipsplit_operator": cookie}) as copy:
            assert (await copy.get("/dashboard")).status_code == 200
            await http.post("/dashboard/logout", data={"csrf_token": await form_token(http, "/dashboard")})
            replayed = await copy.get("/dashboard")
            assert (replayed.status_code, replayed.headers["location"]) == (303, "/dashboard/login")
        again = await sign_in_operator(http)
        assert again.status_code == 303 and http.cookies["tipsplit_operator"] != cookie


async def test_sign_in_attempts_are_limited_per_ip(world: World) -> None:
    async with world.http() as http:
        for _ in range(LOGIN_ATTEMPTS):
            assert (await sign_in_operator(http, "guess")).status_code == 401
        limited = await sign_in_operator(http, OPERATOR_TOKEN)
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["retry-after"]) > 0
        assert "Too many sign-in attempts" in limited.text
        assert "tipsplit_operator" not in limited.headers.get("set-cookie", "")
        guessed = await http.get("/dashboard/health", headers={"authorization": "Bearer guess"})
        assert guessed.status_code == 429 and guessed.json()["retryAfter"] > 0
        # The real token as a Bearer header still works: the limit slows guessing, it does not lock the operator out.
        assert (await http.get("/dashboard/health", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})).is_success


async def test_wrong_bearer_tokens_count_as_attempts(world: World) -> None:
    async with world.http() as http:
        for _ in range(LOGIN_ATTEMPTS):
            assert (await http.get("/metrics", headers={"authorization": "Bearer guess"})).status_code == 401
        assert (await sign_in_operator(http)).status_code == 429
