"""The one retry policy: exponential backoff with a cap and a number of attempts.

Failed legs and failed payments are scheduled by the same rule, so an
operator reading `next_attempt_at` anywhere reads one schedule. Times are
computed here, in Python, and handed to SQL as parameters.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt n (counted from 1) that failed waits `base * 2**(n-1)` seconds, at most `cap`, before the next."""

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    attempts: int = 6

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds <= 0:
            raise ValueError("a retry policy needs positive base_seconds and cap_seconds")
        if self.attempts < 1:
            raise ValueError("a retry policy allows at least one attempt")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed attempts: the base, doubling each time, never above the cap."""
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` attempts have been made: none is left."""
        return attempts >= self.attempts

    def next_attempt_at(self, attempts: int, now: datetime) -> datetime | None:
        """When the next attempt is due after `attempts` failed ones; None once they are used up."""
        if self.exhausted(attempts):
            return None
        return now + timedelta(seconds=self.delay(attempts))

    def schedule(self) -> list[float]:
        """The delays after attempts 1 .. attempts-1, for SQL that indexes them by an attempt count it holds."""
        return [self.delay(attempt) for attempt in range(1, self.attempts)]
