"""Connection-level failures from a real socket that hangs up after reading the request."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tipsplit.blink.client import BlinkClient, RetryPolicy
from tipsplit.blink.errors import BlinkOutcomeUnknown, BlinkUnavailable

RETRY = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02)


class HangUp:
    """Accepts connections, reads the whole request, then drops the connection without answering."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        self.requests += 1
        writer.transport.abort()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/graphql"


@pytest.fixture()
async def hang_up() -> AsyncIterator[HangUp]:
    hang = HangUp()
    hang.server = await asyncio.start_server(hang._handle, "127.0.0.1", 0)
    yield hang
    hang.server.close()
    await hang.server.wait_closed()


async def test_dropped_connection_after_a_payment_was_sent_is_outcome_unknown(hang_up: HangUp) -> None:
    async with BlinkClient(hang_up.url, "blink_key", retry=RETRY) as client:
        with pytest.raises(BlinkOutcomeUnknown, match="lnInvoicePaymentSend: connection failed"):
            await client.pay_invoice("wallet", "lnbc10n1")
    assert hang_up.requests == 1


async def test_dropped_connection_on_a_query_is_retried_then_unavailable(hang_up: HangUp) -> None:
    async with BlinkClient(hang_up.url, "blink_key", retry=RETRY) as client:
        with pytest.raises(BlinkUnavailable, match="me: connection failed"):
            await client.me()
    assert hang_up.requests == RETRY.attempts
