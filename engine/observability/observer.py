"""Hooks the engine calls at the moments on-call cares about. Adapters (metrics, the simulator,
crash tests) subclass EngineObserver; the default does nothing."""

from __future__ import annotations

from engine.domain.recovery import RecoveryPoint


class EngineObserver:
    def idempotency(self, outcome: str) -> None:
        """outcome: new | replayed | conflict | in_flight | recovered"""

    def transition(self, from_state: str, to_state: str, provider: str) -> None:
        pass

    def provider_call(self, provider: str, operation: str, outcome: str, duration_s: float,
                      attempt: int) -> None:
        pass

    def retry(self, provider: str, operation: str) -> None:
        pass

    def retry_budget_exhausted(self, provider: str) -> None:
        pass

    def unknown_outcome(self, provider: str) -> None:
        pass

    def unknown_resolved(self, provider: str, result: str, unknown_for_s: float) -> None:
        pass

    def shadow_duplicate(self, provider: str, method_type: str, would_be: str) -> None:
        """Shadow mode let a would-be duplicate through (would_be: replay | conflict)."""

    def webhook(self, provider: str, result: str) -> None:
        pass

    def webhook_lag(self, provider: str, seconds: float) -> None:
        pass

    def recovery_point(self, name: RecoveryPoint) -> None:
        """Called right after each phase commits (and after each provider call returns)."""

