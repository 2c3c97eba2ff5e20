"""No secret reaches a log line, tracebacks included, in either log format.

Reproduction: with the default console format, an exception inside a request printed a traceback with each
frame's local variables (rich), and among them the merchant's API key and the service's settings.
"""

import io
import json
import logging
from pathlib import Path

import asyncpg
import pytest
import structlog

from tests.chaos.cluster import close_cluster, open_cluster
from tests.services.conftest import ENCRYPTION_KEYS, WEBHOOK_SECRET
from tipsplit.observability import configure_logging

OPERATOR_TOKEN = "log-test-operator-token-7d1f"
SESSION_SECRET = "log-test-session-secret-93b0c2"
# PostgreSQL refuses every new payment: a deterministic exception inside the create-invoice request.
REFUSE_PAYMENTS = """
CREATE FUNCTION refuse_payment() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'new payments are refused by the test'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_payment BEFORE INSERT ON payment_splits FOR EACH ROW EXECUTE FUNCTION refuse_payment();
"""


def _secrets(*api_keys: str) -> dict[str, str]:
    return {
        **{f"api key {i}": key for i, key in enumerate(api_keys)},
        "webhook secret": WEBHOOK_SECRET,
        "webhook secret body": WEBHOOK_SECRET.removeprefix("whsec_"),
        "operator token": OPERATOR_TOKEN,
        "session secret": SESSION_SECRET,
        "encryption key": ENCRYPTION_KEYS.partition(":")[2],
    }


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_an_exception_inside_a_request_logs_its_traceback_and_no_secret(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path, log_format: str
) -> None:
    cluster = await open_cluster(
        tmp_path, fresh_database_url, redis_url, key_prefix, instances=1,
        log_format=log_format, operator_token=OPERATOR_TOKEN, session_secret=SESSION_SECRET,
    )
    try:
        conn = await asyncpg.connect(fresh_database_url)
        try:
            await conn.execute(REFUSE_PAYMENTS)
        finally:
            await conn.close()
        url = cluster.instances[0].url
        body = {"userWalletId": cluster.merchant.wallet_id, "apiKey": cluster.merchant.api_key, "baseAmount": 100}
        response = await cluster.client.post(f"{url}/api/blink/create-invoice", json=body,
                                             headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert response.status_code == 500
    finally:
        await close_cluster(cluster)
    log = cluster.instances[0].log.read_text()
    assert "new payments are refused by the test" in log and "Traceback" in log, log[-3000:]
    assert "self._intake.create(" in log, "the traceback names the frames"
    leaked = [name for name, value in _secrets(cluster.merchant.api_key, cluster.pos.api_key).items() if value in log]
    assert not leaked, f"{leaked} in the {log_format} log"
    if log_format == "json":
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert any("Traceback" in line.get("exception", "") for line in lines)


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_secrets_are_masked_in_messages_fields_and_tracebacks(log_format: str) -> None:
    """A library that logs a secret in a message, a field, or an exception's text: masked in the final line."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", log_format, secrets=[OPERATOR_TOKEN, SESSION_SECRET])
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        merchant_key = "blink_" + "Q" * 40
        settings = {"operator_token": OPERATOR_TOKEN}
        try:
            raise ValueError(f"Invalid header value {merchant_key!r} with {SESSION_SECRET}")
        except ValueError:
            structlog.get_logger("test").exception("request.failed", headers={"x-api-key": merchant_key},
                                                   note=f"token {OPERATOR_TOKEN}", settings=settings)
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application %s", OPERATOR_TOKEN)
    finally:
        root.handlers[:], root.level = handlers, level
        structlog.reset_defaults()
    text = stream.getvalue()
    assert text.count("ValueError") >= 2 and "request.failed" in text and "Exception in ASGI application" in text
    for secret in (merchant_key, OPERATOR_TOKEN, SESSION_SECRET):
        assert secret not in text, (secret, text)
    assert "[REDACTED]" in text
