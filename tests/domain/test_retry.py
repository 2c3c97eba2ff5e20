"""The one retry policy: what failed legs and failed payments wait before their next attempt."""

from datetime import UTC, datetime, timedelta

import pytest

from tipsplit.domain.retry import RetryPolicy


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=2, cap_seconds=300, attempts=10)
    assert [policy.delay(n) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert policy.delay(0) == 2


def test_attempts_run_out_and_then_nothing_is_scheduled() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=60, attempts=3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_attempt_at(1, now) == now + timedelta(seconds=1)
    assert policy.next_attempt_at(2, now) == now + timedelta(seconds=2)
    assert not policy.exhausted(2) and policy.exhausted(3)
    assert policy.next_attempt_at(3, now) is None


def test_the_schedule_sql_indexes_by_attempt_count_ends_where_attempts_run_out() -> None:
    assert RetryPolicy(base_seconds=2, cap_seconds=5, attempts=4).schedule() == [2, 4, 5]
    assert RetryPolicy(base_seconds=2, cap_seconds=5, attempts=1).schedule() == []


def test_a_base_above_the_cap_waits_the_cap() -> None:
    assert RetryPolicy(base_seconds=600, cap_seconds=300).delay(1) == 300


@pytest.mark.parametrize("values", [{"base_seconds": 0}, {"cap_seconds": 0}, {"attempts": 0}])
def test_a_policy_that_cannot_schedule_is_refused(values: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**values)  # type: ignore[arg-type]
