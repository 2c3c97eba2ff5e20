"""BLINKPOS_ACCOUNTS: a pool of POS accounts in one variable, with the single-account variables still working."""

import pytest

from tipsplit.settings import SettingsError, load_settings


def test_the_single_account_comes_first_then_the_pool() -> None:
    """Payments stored before they recorded their POS account were received by the single account."""
    settings = load_settings(
        _env_file=None, blinkpos_accounts=" blink_a:wallet-a , blink_b:wallet-b,",
        blinkpos_api_key="blink_c", blinkpos_btc_wallet_id="wallet-c",
    )
    assert settings.pos_accounts == [("blink_c", "wallet-c"), ("blink_a", "wallet-a"), ("blink_b", "wallet-b")]


def test_the_single_account_alone_still_works_and_is_not_listed_twice() -> None:
    alone = load_settings(_env_file=None, blinkpos_api_key="blink_c", blinkpos_btc_wallet_id="wallet-c")
    assert alone.pos_accounts == [("blink_c", "wallet-c")]
    both = load_settings(
        _env_file=None, blinkpos_accounts="blink_c:wallet-c", blinkpos_api_key="blink_c", blinkpos_btc_wallet_id="wallet-c"
    )
    assert both.pos_accounts == [("blink_c", "wallet-c")]


@pytest.mark.parametrize("value", ["blink_a", "blink_a:", ":wallet-a", "blink_a:w1,blink_b:w1"])
def test_a_malformed_pool_stops_start_up_naming_the_variable_not_the_key(value: str) -> None:
    with pytest.raises(SettingsError, match="BLINKPOS_ACCOUNTS") as refused:
        load_settings(_env_file=None, blinkpos_accounts=value)
    assert "blink_a" not in str(refused.value)


def test_outside_sandbox_a_pool_stands_in_for_the_single_account() -> None:
    keys = "k1:" + "A" * 43 + "="
    load_settings(
        _env_file=None, blink_api_url="https://api.example/graphql", encryption_keys=keys,
        blinkpos_accounts="blink_a:wallet-a",
    ).require_production_secrets()
    with pytest.raises(SettingsError, match="BLINKPOS_ACCOUNTS"):
        load_settings(_env_file=None, blink_api_url="https://api.example/graphql", encryption_keys=keys)\
            .require_production_secrets()


def test_the_margin_must_leave_a_budget() -> None:
    with pytest.raises(SettingsError, match="BLINK_INVOICE_LIMIT_MARGIN"):
        load_settings(_env_file=None, blink_invoice_limit_points=5, blink_invoice_limit_margin=5)
