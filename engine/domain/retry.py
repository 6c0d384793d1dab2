"""Composable, deterministic retry policies (tenacity-style, with injected clock/sleep/RNG)."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryState:
    attempt: int  # attempts made so far (1 after the first)
    elapsed_s: float
    next_delay_s: float = 0.0


class Stop:
    """A stop condition; combine with `|` (stop when either says stop)."""

    def __init__(self, check: Callable[[RetryState], bool], label: str) -> None:
        self._check = check
        self.label = label

    def __call__(self, state: RetryState) -> bool:
        return self._check(state)

    def __or__(self, other: Stop) -> Stop:
        return Stop(lambda s: self(s) or other(s), f"{self.label} | {other.label}")

    def __repr__(self) -> str:
        return self.label


def stop_after_attempt(attempts: int) -> Stop:
    if attempts < 1:
        raise ValueError("attempts: must be at least 1")
    return Stop(lambda s: s.attempt >= attempts, f"stop_after_attempt({attempts})")


def stop_after_delay(seconds: float) -> Stop:
    """Stop when the next attempt would start after the deadline."""
    return Stop(lambda s: s.elapsed_s + s.next_delay_s > seconds, f"stop_after_delay({seconds})")


@dataclass(frozen=True, slots=True)
class ExponentialJitter:
    """delay(n) = uniform(0, min(max_s, initial_s * multiplier**(n-1))) ("full jitter")."""

    initial_s: float = 0.05
    multiplier: float = 2.0
    max_s: float = 2.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1))
        return rng.uniform(0, ceiling) if self.jitter else ceiling


class RetryBudget:
    """Allows retries up to `ratio` of requests seen in the last `window_s` (plus a floor)."""

    def __init__(self, ratio: float = 0.2, min_retries: int = 10, window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError("ratio: must be between 0 and 1")
        self.ratio, self.min_retries, self.window_s, self._clock = ratio, min_retries, window_s, clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self.exhausted_count = 0

    def _trim(self) -> None:
        horizon = self._clock() - self.window_s
        for q in (self._requests, self._retries):
            while q and q[0] < horizon:
                q.popleft()

    def record_request(self) -> None:
        self._requests.append(self._clock())

    def try_spend(self) -> bool:
        self._trim()
        allowed = max(self.min_retries, int(self.ratio * len(self._requests)))
        if len(self._retries) >= allowed:
            self.exhausted_count += 1
            return False
        self._retries.append(self._clock())
        return True


@dataclass(slots=True)
class RetryResult(Generic[T]):
    outcome: T
    attempts: int
    delays: list[float]
    stopped_by: str  # "success", "stop", "budget"


@dataclass
class RetryPolicy:
    stop: Stop = field(default_factory=lambda: stop_after_attempt(4) | stop_after_delay(10.0))
    wait: ExponentialJitter = field(default_factory=ExponentialJitter)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    budget: RetryBudget | None = None

    def run(self, attempt_fn: Callable[[int], T], retry_if: Callable[[T], bool],
            wait_hint: Callable[[T], float | None] | None = None) -> RetryResult[T]:
        """Call attempt_fn(1), attempt_fn(2)... while retry_if(outcome) and nothing stops us.
        `wait_hint`: the wait the other side asked for (Retry-After), honoured when longer than
        the backoff's; the stop conditions still bound it, so a long ask ends the retries."""
        start = self.clock()
        delays: list[float] = []
        attempt = 1
        if self.budget:
            self.budget.record_request()
        while True:
            outcome = attempt_fn(attempt)
            if not retry_if(outcome):
                return RetryResult(outcome, attempt, delays, "success")
            delay = self.wait.delay(attempt, self.rng)
            asked = wait_hint(outcome) if wait_hint else None
            if asked is not None and asked > delay:
                delay = asked
            state = RetryState(attempt, self.clock() - start, delay)
            if self.stop(state):
                return RetryResult(outcome, attempt, delays, "stop")
            if self.budget and not self.budget.try_spend():
                return RetryResult(outcome, attempt, delays, "budget")
            self.sleep(delay)
            delays.append(delay)
            attempt += 1
