"""Blink's invoice-creation limits: 60 points per fixed 60 s window per account and limiter, then a 300 s block."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.sim import documents as doc
from tests.sim.conftest import Account, Sim
from tipsplit.cli.main import app
from tipsplit.settings import Settings
from tipsplit.sim.server import SimServer

TOO_MANY = ("Too many invoices creation, please wait for a while and try again.", "TOO_MANY_REQUEST")


@pytest.fixture
async def fresh() -> AsyncIterator[Sim]:
    """A simulator of its own: these tests move its clock by minutes."""
    async with SimServer(seed=3) as server, httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Sim(server, http)


@pytest.fixture
async def unlimited() -> AsyncIterator[Sim]:
    async with SimServer(seed=4, rate_limits=False) as server, httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Sim(server, http)


async def _for(sim: Sim, account: Account, **extra: Any) -> list[tuple[str, str | None]]:
    """Create an invoice on `account`'s behalf; answer its payload errors as (message, code)."""
    data = await sim.data(doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": {
        "recipientWalletId": account.btc_wallet_id, "amount": 10, **extra}})
    return [(e["message"], e["code"]) for e in data["lnInvoiceCreateOnBehalfOfRecipient"]["errors"]]


async def _own(sim: Sim, account: Account) -> list[tuple[str, str | None]]:
    data = await sim.data(doc.LN_INVOICE_CREATE, {"input": {"walletId": account.btc_wallet_id, "amount": 10}},
                          account.api_key)
    return [(e["message"], e["code"]) for e in data["lnInvoiceCreate"]["errors"]]


async def _limits(sim: Sim, account: Account) -> dict[str, Any]:
    body = (await sim.http.get("/sim/limits")).json()
    entry: dict[str, Any] = next(a for a in body["accounts"] if a["accountId"] == account.account_id)
    assert entry["username"] == account.username
    return entry["limits"]


async def _advance(sim: Sim, seconds: float) -> float:
    now: float = (await sim.http.post("/sim/clock", json={"advanceSeconds": seconds})).json()["now"]
    return now


async def test_the_61st_invoice_in_a_minute_is_refused_and_blocks_the_account_for_five_minutes(fresh: Sim) -> None:
    staff = await fresh.account()
    for _ in range(60):
        assert await _for(fresh, staff) == []
    now = await _advance(fresh, 0)
    assert await _for(fresh, staff) == [TOO_MANY]
    limits = await _limits(fresh, staff)
    assert limits["invoiceCreateForRecipient"]["used"] == 61
    assert limits["invoiceCreateForRecipient"]["blockedUntil"] == pytest.approx(now + 300, abs=2)
    assert limits["invoiceCreateForRecipient"]["refused"] == 1
    assert (limits["invoiceCreateForRecipient"]["points"], limits["invoiceCreateForRecipient"]["windowSeconds"]) == (60, 60)
    assert await _own(fresh, staff) == [], "invoices for oneself are counted apart"
    assert (await _limits(fresh, staff))["invoiceCreate"]["used"] == 1
    await _advance(fresh, 120)
    assert await _for(fresh, staff) == [TOO_MANY], "the block lasts 300 s, past the 60 s window"
    await _advance(fresh, 181)
    assert await _for(fresh, staff) == []
    after = (await _limits(fresh, staff))["invoiceCreateForRecipient"]
    assert (after["used"], after["blockedUntil"], after["refused"]) == (1, None, 2)


async def test_the_window_is_fixed_from_its_first_point(fresh: Sim) -> None:
    staff = await fresh.account()
    start = await _advance(fresh, 0)
    for _ in range(30):
        assert await _for(fresh, staff) == []
    # Moved to just before the window's end whatever real time the requests took (a loaded machine is slow).
    await _advance(fresh, start + 58 - await _advance(fresh, 0))
    for _ in range(30):
        assert await _for(fresh, staff) == []
    await _advance(fresh, start + 61 - await _advance(fresh, 0))
    for _ in range(60):
        assert await _for(fresh, staff) == []
    assert (await _limits(fresh, staff))["invoiceCreateForRecipient"]["refused"] == 0


async def test_own_invoices_are_limited_too_and_refusals_answer_in_the_payload(fresh: Sim) -> None:
    shop = await fresh.account()
    for _ in range(60):
        assert await _own(fresh, shop) == []
    data = await fresh.data(doc.LN_INVOICE_CREATE, {"input": {"walletId": shop.btc_wallet_id, "amount": 10}},
                            shop.api_key)
    assert data["lnInvoiceCreate"] == {"errors": [{"message": TOO_MANY[0], "code": TOO_MANY[1], "path": None}],
                                       "invoice": None}
    assert await _for(fresh, shop) == []


async def test_a_point_is_taken_after_the_input_checks_and_before_the_externalid_check(fresh: Sim) -> None:
    staff = await fresh.account()
    bad_amount = await fresh.data(doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": {
        "recipientWalletId": staff.btc_wallet_id, "amount": 0}})
    assert bad_amount["lnInvoiceCreateOnBehalfOfRecipient"]["errors"][0]["code"] == "INVALID_INPUT"
    assert (await _limits(fresh, staff))["invoiceCreateForRecipient"]["used"] == 0
    assert await _for(fresh, staff, externalId="leg-1") == []
    assert (await _for(fresh, staff, externalId="leg-1"))[0][1] == "INVALID_INPUT"
    assert (await _limits(fresh, staff))["invoiceCreateForRecipient"]["used"] == 2


async def test_with_limits_off_nothing_is_refused_but_use_is_shown(unlimited: Sim) -> None:
    staff = await unlimited.account()
    for _ in range(75):
        assert await _for(unlimited, staff) == []
    body = (await unlimited.http.get("/sim/limits")).json()
    assert body["enabled"] is False
    limits = await _limits(unlimited, staff)
    assert (limits["invoiceCreateForRecipient"]["used"], limits["invoiceCreateForRecipient"]["blockedUntil"],
            limits["invoiceCreateForRecipient"]["refused"]) == (75, None, 0)


def test_the_command_and_the_sandbox_can_turn_limits_off(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["sim", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0 and "--no-rate-limits" in result.output
    monkeypatch.setenv("SANDBOX_RATE_LIMITS", "false")
    assert Settings().sandbox_rate_limits is False
    monkeypatch.delenv("SANDBOX_RATE_LIMITS")
    assert Settings().sandbox_rate_limits is True
