"""The HTTP connection pool the Blink client posts GraphQL over, its failures sorted by what they prove.

aiohttp carries the requests: on the service's own measurements it spends about a quarter of the CPU
per call that httpx (with httpcore, anyio and h11) did, and Blink calls were half the service's CPU
per payment. What matters for money is not the library but the sorting of its failures, done here:

- `NotSent`: no connection could be made (refused, DNS, TLS handshake, no pool slot in time), so the
  request never left this process;
- `NoAnswerInTime`: the request may have been sent, and no complete answer came in time;
- `ConnectionLost`: the connection failed after it was made (reset, closed mid-answer, garbled answer),
  so the request may have been received and acted on.

aiohttp never resends a POST on its own (it retries only idempotent methods on a stale keep-alive
connection), so one call here is at most one request at Blink.
"""

import json
import ssl
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import certifi


class TimeoutSettings(Protocol):
    """Seconds allowed for each phase of a call (None: no limit); `httpx.Timeout` has this shape too."""

    @property
    def connect(self) -> float | None: ...
    @property
    def read(self) -> float | None: ...
    @property
    def write(self) -> float | None: ...
    @property
    def pool(self) -> float | None: ...


@dataclass(frozen=True)
class Timeout:
    """Seconds for connecting, for each read of the answer, for writing the request, and for a free pool slot.

    A GraphQL request is far smaller than the socket's send buffer, so writing it never waits on the
    peer: `write` bounds nothing separately, the read limit covers a peer that stopped reading.
    """

    connect: float | None = 5.0
    read: float | None = 30.0
    write: float | None = 10.0
    pool: float | None = 5.0

    @classmethod
    def every(cls, seconds: float) -> "Timeout":
        return cls(connect=seconds, read=seconds, write=seconds, pool=seconds)


class TransportFailure(Exception):
    """A call that produced no HTTP answer."""


class NotSent(TransportFailure):
    """No connection was made, so the request was never sent."""


class NoAnswerInTime(TransportFailure):
    """The request may have been sent; no complete answer arrived in time."""


class ConnectionLost(TransportFailure):
    """The connection failed after it was made; the request may have been acted on."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body)


def verified_tls() -> ssl.SSLContext:
    """Certificates checked against Mozilla's roots (certifi), as httpx did, whatever the host's own store holds."""
    return ssl.create_default_context(cafile=certifi.where())


class HttpPool:
    """Kept-alive connections to Blink, shared by every client of one process (one per API key).

    The aiohttp session is made on first use, inside the running event loop, so a pool can be built
    where no loop runs yet (settings are read and clients assembled before the server starts).
    """

    def __init__(self, *, max_connections: int = 100, tls: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        self._tls = tls if tls is not None else verified_tls()
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Every pooled connection is kept alive: fewer keep-alive slots than concurrent calls
            # would close and reopen connections on each burst.
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ssl=self._tls)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def post_json(
        self, url: str, body: Any, headers: dict[str, str], timeout: TimeoutSettings
    ) -> Answer:
        """POST `body` as JSON and read the whole answer; raises a TransportFailure when there is none."""
        data = json.dumps(body, separators=(",", ":")).encode()
        session = self._open()
        try:
            async with session.post(
                url, data=data, headers={**headers, "Content-Type": "application/json"}, timeout=_client_timeout(timeout)
            ) as response:
                return Answer(response.status, await response.read())
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Raised only while a new connection (or a pool slot) is obtained: nothing was written yet.
            raise NotSent(type(exc).__name__) from exc
        except TimeoutError as exc:
            raise NoAnswerInTime(type(exc).__name__) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _client_timeout(timeout: TimeoutSettings) -> aiohttp.ClientTimeout:
    """aiohttp's `connect` covers waiting for a pool slot and connecting; `sock_read` is a per-read limit."""
    connect = None if timeout.connect is None or timeout.pool is None else timeout.connect + timeout.pool
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=timeout.connect, sock_read=timeout.read)
