from decimal import Decimal
from typing import Any

import pytest

from tipsplit.domain.memos import forward_memo, tip_memo
from tipsplit.domain.models import TipData, check_payment_hash, plan_legs


def tip(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "baseAmount": 1000,
        "tipAmount": 150,
        "tipPercent": 15,
        "tipRecipients": [{"username": "alice", "share": 60}, {"username": "bob", "share": 40}],
        "userApiKey": "blink_secret_key",
        "userWalletId": "wallet-1",
    }
    base.update(overrides)
    return base


def test_legs_sum_to_the_invoice() -> None:
    data = TipData.model_validate(tip())
    legs = plan_legs(data)
    assert [leg.leg for leg in legs] == ["base", "tip:1", "tip:2"]
    assert sum(leg.amount for leg in legs) == data.total_amount == 1150
    assert [leg.amount for leg in legs] == [1000, 90, 60]
    assert [leg.memo for leg in legs] == [
        "BlinkPOS: 1000 + 15% tip = 1150 | 150 sat tip split to alice, bob",
        "BlinkPOS Tip (1/2): 90 sats",
        "BlinkPOS Tip (2/2): 60 sats",
    ]


def test_zero_sat_legs_are_planned_as_skipped() -> None:
    data = TipData.model_validate(tip(tipAmount=1, tipRecipients=[{"username": "alice", "share": 50},
                                                                  {"username": "bob", "share": 50}]))
    legs = plan_legs(data)
    assert [leg.skipped for leg in legs] == [False, False, True]


def test_single_legacy_recipient_becomes_a_full_share() -> None:
    data = TipData.model_validate(tip(tipRecipients=None, tipRecipient="carol"))
    assert [(r.username, r.share) for r in data.tip_recipients] == [("carol", Decimal(100))]


def test_the_key_is_hidden_unless_asked_for() -> None:
    data = TipData.model_validate(tip())
    assert "blink_secret_key" not in repr(data)
    assert "blink_secret_key" not in str(data.model_dump())
    assert data.user_api_key.get_secret_value() == "blink_secret_key"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"baseAmount": -1}, "greater than or equal to 0"),
        ({"tipAmount": -5}, "greater than or equal to 0"),
        ({"tipRecipients": [{"username": "alice", "share": 70}]}, "sum to 100"),
        ({"tipRecipients": [], "tipRecipient": None}, "at least one tip recipient"),
        ({"memo": "x" * 2000}, "at most 639"),
        ({"tipRecipients": [{"username": "a!", "share": 100}]}, "letters, digits"),
        ({"baseAmount": 0, "tipAmount": 0, "tipRecipients": []}, "at least 1 sat"),
        ({"baseAmount": 10.5}, "valid integer"),
    ],
)
def test_bad_tip_data_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TipData.model_validate(tip(**overrides))


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "a" * 63, "a" * 65])
def test_payment_hash_must_be_64_hex(bad: str) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        check_payment_hash(bad)


def test_payment_hash_is_lowercased() -> None:
    assert check_payment_hash("AB" * 32) == "ab" * 32


def test_memos_match_the_original_app() -> None:
    assert (
        forward_memo(1000, 150, Decimal(15), 1150, ["alice", "bob"])
        == "BlinkPOS: 1000 + 15% tip = 1150 | 150 sat tip split to alice, bob"
    )
    assert forward_memo(1000, 100, Decimal(10), 1100, ["alice"]).endswith("100 sat tip to alice")
    assert tip_memo(1, 2, 90) == "BlinkPOS Tip (1/2): 90 sats"
    assert tip_memo(1, 1, 90) == "BlinkPOS Tip: 90 sats"
