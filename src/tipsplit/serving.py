"""Serve an ASGI app on a real socket as a task of the running event loop.

Used to embed the simulator in the service (sandbox mode) and to run the
service and the simulator inside tests, over real HTTP.
"""

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn

# Idle keep-alive connections stay open this long, as an API behind a CDN keeps them for a minute or more:
# uvicorn's 5 s default closes a connection a client is about to reuse, and that request fails.
KEEP_ALIVE_SECONDS = 75


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class BackgroundServer:
    """`await start()` binds the port (so `.url` is right for port 0) and serves until `stop()`."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, lifespan: Literal["auto", "on", "off"] = "on"
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._lifespan = lifespan
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that name it, and without
        # it every small answer waits for Nagle's delayed ACK (about 40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", log_config=None, lifespan=self._lifespan, timeout_graceful_shutdown=2,
            proxy_headers=False, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None
