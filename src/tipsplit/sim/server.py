"""Run the simulator on a real socket: embedded in a test's or the service's event loop, or as a process."""

from types import TracebackType

import uvicorn

from tipsplit.serving import KEEP_ALIVE_SECONDS, BackgroundServer
from tipsplit.sim.app import create_app
from tipsplit.sim.ledger import Ledger
from tipsplit.sim.state import SimState


class SimServer(BackgroundServer):
    """The simulator served on a free port by uvicorn, as a task in the running event loop.

    >>> async with SimServer(seed=7) as sim:
    ...     httpx.post(sim.graphql_url, ...)
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, seed: int = 0, rate_limits: bool = True, latency_ms: int = 0
    ) -> None:
        super().__init__(create_app(seed, rate_limits, latency_ms), host, port)
        self.seed = seed

    @property
    def state(self) -> SimState:
        state: SimState = self.app.state.sim
        return state

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/graphql"

    async def __aenter__(self) -> "SimServer":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def run(
    host: str = "127.0.0.1", port: int = 8100, seed: int = 0, rate_limits: bool = True, latency_ms: int = 0,
    access_log: bool = False,
) -> None:
    """Serve the simulator until interrupted (the `tipsplit sim` command).

    Idle keep-alive connections stay open as long as the embedded servers' (`KEEP_ALIVE_SECONDS`). The access
    log is off unless asked for: a line per request was about a twelfth of the simulator's CPU under load.
    """
    uvicorn.run(create_app(seed, rate_limits, latency_ms), host=host, port=port, log_level="info",
                timeout_keep_alive=KEEP_ALIVE_SECONDS, access_log=access_log)
