"""A property test through the HTTP API: random invoices and payments, money conserved, no invoice paid twice.

Hypothesis drives synchronous tests, so each example runs its own simulator on
its own event loop in a worker thread, leaving the session's loop alone.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sim.conftest import Sim
from tipsplit.sim.server import SimServer

Op = tuple[str, int, int]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("invoice"), st.integers(0, 2), st.integers(1, 2_000)),
        st.tuples(st.just("pay"), st.integers(0, 2), st.integers(0, 50)),
        st.tuples(st.just("outside"), st.integers(0, 50), st.just(0)),
    ),
    min_size=1, max_size=14,
)


async def scenario(balances: list[int], steps: list[Op]) -> None:
    async with SimServer(seed=11) as server, httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        sim = Sim(server, http)
        accounts = [await sim.account(balance=b, prefix=f"p{i}") for i, b in enumerate(balances)]
        expected = {a.btc_wallet_id: b for a, b in zip(accounts, balances, strict=True)}
        invoices: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        paid: set[str] = set()
        for kind, a, b in steps:
            if kind == "invoice":
                invoice = await sim.invoice(accounts[a].btc_wallet_id, b)
                invoices.append(invoice)
                owner[invoice["paymentHash"]] = accounts[a].btc_wallet_id
            elif invoices and kind == "pay":
                invoice = invoices[b % len(invoices)]
                result = await sim.send(accounts[a], invoice["paymentRequest"])
                if invoice["paymentHash"] in paid:
                    assert result["status"] == "ALREADY_PAID"
                if result["status"] == "SUCCESS":
                    expected[accounts[a].btc_wallet_id] -= invoice["satoshis"]
                    expected[owner[invoice["paymentHash"]]] += invoice["satoshis"]
                    paid.add(invoice["paymentHash"])
            elif invoices and kind == "outside":
                invoice = invoices[a % len(invoices)]
                response = await http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
                assert response.status_code == (409 if invoice["paymentHash"] in paid else 200)
                if response.status_code == 200:
                    expected[owner[invoice["paymentHash"]]] += invoice["satoshis"]
                    paid.add(invoice["paymentHash"])
        ledger = await sim.ledger()
        assert ledger["violations"] == []
        assert {w["walletId"]: w["balance"] for w in ledger["wallets"] if w["currency"] == "BTC"} == expected
        hashes = [p["paymentHash"] for p in ledger["payments"]]
        assert len(hashes) == len(set(hashes)) and set(hashes) == paid


@settings(max_examples=12, deadline=None)
@given(balances=st.lists(st.integers(0, 3_000), min_size=3, max_size=3), steps=ops)
def test_random_payments_over_http_conserve_money(balances: list[int], steps: list[Op]) -> None:
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(asyncio.run, scenario(balances, steps)).result()
