"""The one backoff formula (linli.common.backoff): its bounds, with and without jitter."""

from __future__ import annotations

import random

import pytest

from linli.common.backoff import backoff_delay


def test_without_jitter_the_delay_doubles_from_base_and_stops_at_the_cap() -> None:
    delays = [backoff_delay(n, base=0.5, cap=30.0, jitter=False) for n in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    # an attempt count that has run for days does not overflow
    assert backoff_delay(10_000, base=0.5, cap=30.0, jitter=False) == 30.0


def test_with_jitter_every_delay_lies_between_base_and_the_doubled_bound() -> None:
    random.seed(16)
    for attempt in range(12):
        bound = min(60.0, 0.5 * 2**attempt)
        draws = [backoff_delay(attempt, base=0.5, cap=60.0) for _ in range(200)]
        assert all(0.5 <= d <= bound for d in draws)
        if bound > 1:  # spread out, not all at one end: clients that failed together scatter
            assert max(draws) - min(draws) > (bound - 0.5) / 2


def test_a_floor_lets_the_first_retries_come_almost_at_once() -> None:
    # the uplink's reconnect: thousands of gateways spread over [0.05 s, bound]
    random.seed(7)
    draws = [backoff_delay(0, base=1.0, cap=300.0, floor=0.05) for _ in range(500)]
    assert all(0.05 <= d <= 1.0 for d in draws) and min(draws) < 0.2
    assert backoff_delay(3, base=1.0, cap=300.0, floor=0.05, jitter=False) == 8.0


def test_a_cap_below_the_base_is_refused_with_both_values() -> None:
    with pytest.raises(ValueError, match=r"base=5\.0, cap=1\.0"):
        backoff_delay(0, base=5.0, cap=1.0)
