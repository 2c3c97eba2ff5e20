"""Run the simulator on a real socket: embedded in a test's event loop, or as a blocking process."""

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from tipsplit.sim.app import create_app
from tipsplit.sim.ledger import Ledger
from tipsplit.sim.state import SimState


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (pytest, the app embedding it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SimServer:
    """The simulator served on a free port by uvicorn, as a task in the running event loop.

    >>> async with SimServer(seed=7) as sim:
    ...     httpx.post(sim.graphql_url, ...)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.seed = seed
        self.app = create_app(seed)
        self.port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> SimState:
        state: SimState = self.app.state.sim
        return state

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/graphql"

    async def start(self) -> None:
        """Bind the port first (so `.url` is right even for port 0), then serve until stop()."""
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so,
        # and without it every answer waits ~40 ms on Nagle and delayed ACKs.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the simulator stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    async def __aenter__(self) -> "SimServer":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def run(host: str = "127.0.0.1", port: int = 8100, seed: int = 0) -> None:
    """Serve the simulator until interrupted (the `tipsplit sim` command)."""
    uvicorn.run(create_app(seed), host=host, port=port, log_level="info")
