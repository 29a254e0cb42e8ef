"""Retry delays for the outbox deliverer (openline.core.backoff).

The contract: retry n waits between half and all of min(60 s, 0.5 s * 2**(n-1)), so the
ceiling doubles until it reaches a minute and never passes it, and a delay is never zero.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openline.core.backoff import BASE_SECONDS, CAP_SECONDS, delay


class _Fixed(random.Random):
    """A random source that always returns the same draw."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


_LOW, _HIGH = _Fixed(0.0), _Fixed(1.0 - 2**-53)  # the extremes random() can return


def _ceiling(attempt: int) -> float:
    return min(60.0, 0.5 * 2 ** min(attempt - 1, 64))


def test_backoff_constants() -> None:
    assert BASE_SECONDS == 0.5
    assert CAP_SECONDS == 60.0


@pytest.mark.parametrize("attempt", [0, -1, -(10**9)])
def test_delay_refuses_attempt_below_one(attempt: int) -> None:
    with pytest.raises(ValueError, match=f"attempt counts from 1, got {attempt}"):
        delay(attempt)


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 0.25, 0.5),
        (2, 0.5, 1.0),
        (3, 1.0, 2.0),
        (4, 2.0, 4.0),
        (7, 16.0, 32.0),
        (8, 30.0, 60.0),  # 64 s would pass the cap
        (9, 30.0, 60.0),
        (100, 30.0, 60.0),
        (10**6, 30.0, 60.0),
    ],
)
def test_delay_exact_bounds(attempt: int, low: float, high: float) -> None:
    assert delay(attempt, rng=_LOW) == low
    assert delay(attempt, rng=_Fixed(0.5)) == (low + high) / 2
    # c/2 + r*c/2 for the largest r below 1 rounds to c itself: the ceiling is inclusive.
    assert low < delay(attempt, rng=_HIGH) <= high
    assert delay(attempt, rng=_HIGH) == pytest.approx(high)


@given(st.integers(min_value=1, max_value=10**9), st.randoms(use_true_random=False))
def test_delay_within_half_ceiling_and_ceiling(attempt: int, rng: random.Random) -> None:
    c = _ceiling(attempt)
    d = delay(attempt, rng=rng)
    assert c / 2 <= d <= c
    assert 0.25 <= d <= CAP_SECONDS


@given(st.integers(min_value=1, max_value=10**6))
def test_delay_ceiling_is_monotone(attempt: int) -> None:
    assert delay(attempt + 1, rng=_HIGH) >= delay(attempt, rng=_HIGH)
    assert delay(attempt + 1, rng=_LOW) >= delay(attempt, rng=_LOW)


def test_delay_never_above_a_minute_with_the_module_random() -> None:
    delays = [delay(n) for n in range(1, 200) for _ in range(5)]
    assert max(delays) <= 60.0
    assert min(delays) >= 0.25


def test_delay_is_reproducible_with_a_seeded_rng() -> None:
    a = [delay(n, rng=random.Random(42)) for n in range(1, 20)]
    b = [delay(n, rng=random.Random(42)) for n in range(1, 20)]
    assert a == b


def test_delay_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    samples = {delay(10, rng=rng) for _ in range(50)}
    assert len(samples) > 40
    assert min(samples) < 40 < max(samples)
