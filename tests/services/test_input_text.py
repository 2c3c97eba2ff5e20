"""Text fields of create-invoice are checked before Blink is asked anything: a bad one costs no Blink call."""

import json
from typing import Any

import pytest

from tests.services.conftest import World

# What a sale's checks ask Blink: none of it may happen for a request that is refused on its text.
SALE_OPERATIONS = {"me", "authorization", "accountDefaultWallet", "realtimePrice", "lnInvoiceCreate"}
ALICE = [{"username": "alice", "share": 100}]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"baseAmount": 1000, "memo": "table 4\x00"}, "memo"),
        ({"baseAmount": 1000, "memo": "escape \x1b[2J"}, "memo"),
        ({"baseAmount": 1000, "memo": "lone \ud800 surrogate"}, "memo"),
        ({"displayCurrency": "USD", "baseAmountDisplay": "12.50", "memo": "nul\x00"}, "memo"),
        ({"baseAmount": 1000, "tipAmount": 10, "tipRecipients": [{"username": "alice\x00", "share": 100}]},
         "tipRecipients.0.username"),
        ({"baseAmount": 1000, "tipAmount": 10, "tipRecipient": "bob\x00"}, "tipRecipient"),
        ({"baseAmount": 1000, "displayCurrency": "US\x00D"}, "displayCurrency"),
        ({"baseAmount": 1000, "userWalletId": "wallet\x00id"}, "userWalletId"),
    ],
)
async def test_bad_text_is_refused_as_json_before_any_blink_call(
    world: World, fields: dict[str, Any], field: str
) -> None:
    order = {"userWalletId": world.merchant.wallet_id, "apiKey": world.merchant.api_key, **fields}
    await world.clear_operations()
    async with world.http() as client:
        # Sent as raw JSON text: a lone surrogate cannot be encoded by httpx's `json=`, but JSON may carry it.
        response = await client.post("/api/blink/create-invoice", content=json.dumps(order).encode(),
                                     headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["field"] == field, response.json()
    asked = await world.operations()
    assert not SALE_OPERATIONS & set(asked), asked
    assert world.merchant.api_key not in response.text


async def test_tabs_and_line_breaks_in_a_memo_are_fine(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=300, tipAmount=30, tipRecipients=ALICE,
                                             memo="Table 4\n2 × coffee\tcroissant")
        status = await world.status(client, invoice["paymentHash"])
    assert status["status"] == "pending"
