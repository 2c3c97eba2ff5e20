"""A simulator ledger saved to a file comes back whole in a fresh simulator, which never repeats a payment hash."""

import pickle
from pathlib import Path

from tipsplit.sim import persist
from tipsplit.sim.ledger import Scope
from tipsplit.sim.state import SimState


def test_a_restored_ledger_keeps_accounts_keys_balances_and_invoices(tmp_path: Path) -> None:
    path = tmp_path / "sim.pickle"
    first = SimState.create(seed=7)
    shop, key = first.ledger.create_account("shop", 0, frozenset({Scope.READ}))
    paid = first.ledger.create_invoice(shop.btc_wallet_id, 1_234, "table 4")
    first.ledger.pay_from_outside(paid.payment_request)
    open_invoice = first.ledger.create_invoice(shop.btc_wallet_id, 99)
    first.clock.advance(3600)
    persist.save(first, path, {"note": "kept"})

    second = SimState.create(seed=8)
    assert persist.load(second, path) == {"note": "kept"}
    assert second.ledger.authenticate(key.key) == key
    assert second.ledger.wallet(shop.btc_wallet_id).balance == 1_234
    assert second.ledger.invoice_by_hash(open_invoice.payment_hash).amount == 99
    assert second.clock.now() - first.clock.now() < 5 and second.clock.now() > first.clock.now() - 1
    assert second.ledger.audit() == []
    second.ledger.pay_from_outside(open_invoice.payment_request)
    assert second.ledger.wallet(shop.btc_wallet_id).balance == 1_333


def test_a_restored_ledger_draws_fresh_hashes_even_from_an_old_snapshot(tmp_path: Path) -> None:
    """A crash can lose the last changes: invoices made after the snapshot must not come back from the next start."""
    path = tmp_path / "sim.pickle"
    first = SimState.create(seed=7)
    shop, _ = first.ledger.create_account("shop")
    persist.save(first, path, {})
    after_snapshot = first.ledger.create_invoice(shop.btc_wallet_id, 10).payment_hash
    hashes = set()
    for seed in (11, 12, 13):  # the sandbox draws a new seed on every start
        restarted = SimState.create(seed=seed)
        assert persist.load(restarted, path) == {}
        hashes.add(restarted.ledger.create_invoice(shop.btc_wallet_id, 10).payment_hash)
    assert after_snapshot not in hashes and len(hashes) == 3


def test_a_snapshot_of_another_layout_is_set_aside_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "sim.pickle"
    state = SimState.create(seed=1)
    state.ledger.create_account("shop")
    persist.save(state, path, {})
    snapshot = pickle.loads(path.read_bytes())
    snapshot["layout"]["Account"] = ("id", "renamed")
    path.write_bytes(pickle.dumps(snapshot))
    fresh = SimState.create(seed=2)
    assert persist.load(fresh, path) is None
    assert fresh.ledger.snapshot()["accounts"] == []
    assert not path.exists() and (tmp_path / "sim.pickle.unusable").exists()
    path.write_bytes(b"not a pickle")
    assert persist.load(SimState.create(seed=3), path) is None
