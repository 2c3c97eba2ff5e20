"""A wall clock that tests can move forward, so invoice expiry is testable without waiting."""

import time


class SimClock:
    """Real time plus an offset that only grows: expiry is computed against `now()`."""

    def __init__(self, start_offset: float = 0.0) -> None:
        self._offset = start_offset

    def now(self) -> float:
        """Seconds since the epoch, as the simulator sees them."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward; time never runs backwards, so negative steps are refused."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        return self.now()
