"""The one token bucket every rate limit uses (nbcall/signaling/bucket.py), on a fake clock."""

from __future__ import annotations

from nbcall.signaling.bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_at_once_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.125  # half a token
    assert not bucket.take()
    clock.now += 0.125  # a whole one, counting the half a refused take must not lose
    assert bucket.take() and not bucket.take()
    clock.now += 60  # refilled, but never past the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_the_warning_comes_at_most_once_per_period() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.warn() and not bucket.warn()
    clock.now += 0.99
    assert not bucket.warn()
    clock.now += 0.02
    assert bucket.warn()
    clock.now += 2
    assert not bucket.warn(every=5) and bucket.warn(every=2)
