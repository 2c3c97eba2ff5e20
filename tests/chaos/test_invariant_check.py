"""The ledger invariant check itself must be able to fail: a stray payment and a stuck claim are caught."""

import asyncpg
import pytest

from tests.chaos.conftest import ClusterFactory
from tests.chaos.invariants import Report, check_ledger, drain
from tipsplit.blink.client import BlinkClient

pytestmark = pytest.mark.chaos


async def test_the_check_catches_a_second_payment_and_a_stuck_claim(make_cluster: ClusterFactory) -> None:
    cluster = await make_cluster(instances=1)
    await cluster.sell(2)
    await drain(cluster, timeout=30)
    await check_ledger(cluster, Report("self-test: clean"))

    pos = BlinkClient(cluster.sim.graphql_url, cluster.pos.api_key)
    try:
        # A paid POS invoice tipsplit never heard of: money that would never be forwarded (lost).
        unknown = await pos.create_invoice(cluster.pos.wallet_id, 50, "not via tipsplit", 60)
        assert (await cluster.sim_http.post("/sim/pay", json={"paymentRequest": unknown.payment_request})).is_success
        with pytest.raises(AssertionError, match="unknown to tipsplit"):
            await check_ledger(cluster, Report("self-test: lost"))
        # Money leaves the POS wallet for something that is no succeeded leg: a duplicate.
        invoice = await pos.create_invoice_on_behalf_of_recipient(cluster.merchant.wallet_id, 7, "stray", 60)
        await pos.pay_invoice(cluster.pos.wallet_id, invoice.payment_request, "stray")
    finally:
        await pos.aclose()
    with pytest.raises(AssertionError, match="no succeeded leg"):
        await check_ledger(cluster, Report("self-test: stray payment"))

    # A payment left `processing` is reported too.
    conn = await asyncpg.connect(cluster.database_url)
    try:
        await conn.execute("UPDATE payment_splits SET status = 'processing', claim_owner = 'x',"
                           " claim_expires_at = now() + interval '1 hour'"
                           " WHERE payment_hash = (SELECT payment_hash FROM payment_splits LIMIT 1)")
    finally:
        await conn.close()
    with pytest.raises(AssertionError, match="still processing"):
        await check_ledger(cluster, Report("self-test: stuck"))
