import random

import pytest

from engine.domain.retry import (
    ExponentialJitter,
    RetryBudget,
    RetryPolicy,
    stop_after_attempt,
    stop_after_delay,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_exponential_backoff_without_jitter_gives_the_exact_sequence() -> None:
    t = FakeTime()
    policy = RetryPolicy(stop=stop_after_attempt(5), wait=ExponentialJitter(0.1, 2.0, 0.5, False),
                         clock=t.clock, sleep=t.sleep)
    result = policy.run(lambda n: "error", lambda o: o == "error")
    assert t.sleeps == [0.1, 0.2, 0.4, 0.5]
    assert result.attempts == 5 and result.stopped_by == "stop"


def test_seeded_full_jitter_gives_the_exact_sequence() -> None:
    t = FakeTime()
    policy = RetryPolicy(stop=stop_after_attempt(4), wait=ExponentialJitter(0.1, 2.0, 10.0),
                         clock=t.clock, sleep=t.sleep, rng=random.Random(7))
    policy.run(lambda n: "error", lambda o: o == "error")
    expected_rng = random.Random(7)
    expected = [expected_rng.uniform(0, c) for c in (0.1, 0.2, 0.4)]
    assert t.sleeps == expected
    assert [round(s, 6) for s in t.sleeps] == [0.032383, 0.03017, 0.260374]


def test_stop_after_delay_never_sleeps_past_the_deadline() -> None:
    t = FakeTime()
    policy = RetryPolicy(stop=stop_after_attempt(100) | stop_after_delay(1.0),
                         wait=ExponentialJitter(0.3, 2.0, 5.0, False), clock=t.clock, sleep=t.sleep)
    policy.run(lambda n: "error", lambda o: o == "error")
    assert t.sleeps == [0.3, 0.6]  # a third wait of 1.2 s would end after the 1 s deadline
    assert sum(t.sleeps) <= 1.0


def test_success_stops_retrying_at_once() -> None:
    t = FakeTime()
    policy = RetryPolicy(wait=ExponentialJitter(jitter=False), clock=t.clock, sleep=t.sleep)
    result = policy.run(lambda n: "ok" if n == 2 else "error", lambda o: o == "error")
    assert result.outcome == "ok" and result.attempts == 2 and len(t.sleeps) == 1


def test_retry_budget_caps_retries_to_a_fraction_of_recent_traffic() -> None:
    t = FakeTime()
    budget = RetryBudget(ratio=0.1, min_retries=2, window_s=10, clock=t.clock)
    for _ in range(50):
        budget.record_request()
    granted = sum(budget.try_spend() for _ in range(20))
    assert granted == 5  # 10 % of 50
    assert budget.exhausted_count == 15
    t.now += 11  # the window slides: old requests and retries no longer count
    assert sum(budget.try_spend() for _ in range(5)) == 2  # only the floor


def test_budget_exhaustion_stops_the_policy() -> None:
    t = FakeTime()
    budget = RetryBudget(ratio=0.0, min_retries=1, window_s=60, clock=t.clock)
    policy = RetryPolicy(stop=stop_after_attempt(10), clock=t.clock, sleep=t.sleep, budget=budget)
    result = policy.run(lambda n: "error", lambda o: o == "error")
    assert result.stopped_by == "budget" and result.attempts == 2


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="attempts"):
        stop_after_attempt(0)
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=1.5)


def test_a_providers_retry_after_is_honoured_but_never_past_the_deadline() -> None:
    """A 429's Retry-After replaces a shorter backoff; a wait that would end after the stop's
    deadline ends the retries instead (the engine never sleeps past its own budget)."""
    t = FakeTime()
    policy = RetryPolicy(stop=stop_after_attempt(5) | stop_after_delay(4.0),
                         wait=ExponentialJitter(0.1, 2.0, 5.0, False), clock=t.clock,
                         sleep=t.sleep)
    asked = {1: 1.5, 2: None, 3: 0.05}
    result = policy.run(lambda n: n, lambda n: True, wait_hint=lambda n: asked.get(n, 9.0))
    assert t.sleeps == [1.5, 0.2, 0.4]  # asked 1.5; none asked; asked less than the backoff
    assert result.stopped_by == "stop" and result.attempts == 4  # the 9 s ask ends it
