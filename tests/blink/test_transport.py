"""Connection-level failures from a real socket that hangs up after reading the request."""

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate no public root vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


async def test_an_unverifiable_certificate_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """TLS is verified by default: a payment to an impostor is never written, so it is 'nothing happened'."""
    hang = HangUp()
    hang.server = await asyncio.start_server(hang._handle, "127.0.0.1", 0, ssl=_self_signed(tmp_path))
    url = hang.url.replace("http://", "https://")
    try:
        async with BlinkClient(url, "blink_key", retry=RETRY) as client:
            with pytest.raises(BlinkUnavailable, match="lnInvoicePaymentSend: could not connect"):
                await client.pay_invoice("wallet", "lnbc10n1")
    finally:
        hang.server.close()
        await hang.server.wait_closed()
    assert hang.requests == 0
