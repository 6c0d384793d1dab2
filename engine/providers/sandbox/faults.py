"""Seeded fault profiles for the provider sandbox: per provider, the share of calls that fail
each way, latency, and what becomes of notifications."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-call probabilities. Every decision is drawn from a seeded RNG, so runs replay."""

    timeout_after_charge: float = 0.0  # the duplicate-charge trap
    timeout_before_charge: float = 0.0
    server_error: float = 0.0
    decline: float = 0.0
    lookup_unavailable: float = 0.0
    duplicate_notification: float = 0.0
    out_of_order_notification: float = 0.0
    lost_notification: float = 0.0
    notification_delay_s: float = 1.0
    rate_limited: float = 0.0  # 429 with Retry-After; nothing done
    connect_refused: float = 0.0  # in process only: the connection is refused; nothing sent
    reset_after_charge: float = 0.0  # done, then the connection is reset mid-answer
    latency_mean_s: float = 0.12
    latency_p99_s: float = 0.6


@dataclass(frozen=True, slots=True)
class Incident:
    """One provider in trouble for a while, phase after phase, placed relative to the end of a
    simulated timeline; after the last phase it recovers."""

    provider: str
    phases: tuple[tuple[timedelta, Faults], ...]
    starts_before_end: timedelta

    @property
    def lasts(self) -> timedelta:
        return sum((duration for duration, _ in self.phases), timedelta())

    def faults_after(self, into: timedelta) -> Faults | None:
        """The phase's faults `into` the incident; None outside it."""
        if into < timedelta(0):
            return None
        elapsed = timedelta(0)
        for duration, faults in self.phases:
            elapsed += duration
            if into < elapsed:
                return faults
        return None


@dataclass(frozen=True, slots=True)
class FaultProfile:
    name: str
    description: str
    default: Faults
    per_provider: dict[str, Faults] = field(default_factory=dict)
    incident: Incident | None = None

    def for_provider(self, provider: str, until_end: timedelta | None = None) -> Faults:
        """Faults now; `until_end`: simulated time left in the timeline (for incidents)."""
        i = self.incident
        if i is not None and until_end is not None and i.provider == provider:
            during = i.faults_after(i.starts_before_end - until_end)
            if during is not None:
                return during
        return self.per_provider.get(provider, self.default)


_CALM = Faults(decline=0.03)
_DEFAULT = Faults(timeout_after_charge=0.02, timeout_before_charge=0.01, server_error=0.03,
                  decline=0.06, lookup_unavailable=0.1, duplicate_notification=0.05,
                  out_of_order_notification=0.05, lost_notification=0.01, rate_limited=0.01,
                  reset_after_charge=0.01)

PROFILES: dict[str, FaultProfile] = {
    p.name: p for p in [
        FaultProfile("calm", "healthy providers: a few declines, no technical faults", _CALM),
        FaultProfile("default", "everyday faults: some 5xx and 429s, timeouts and resets (some "
                     "after charging), declines, duplicate, out-of-order and lost notifications",
                     _DEFAULT),
        FaultProfile(
            "provider-outage", "adyen is failing: half its calls are 5xx or time out "
            "(many after charging); the others are normal",
            _DEFAULT,
            {"adyen": replace(_DEFAULT, server_error=0.35, timeout_after_charge=0.15,
                                  timeout_before_charge=0.1, lookup_unavailable=0.3,
                                  latency_mean_s=1.5, latency_p99_s=8.0)},
        ),
        FaultProfile(
            "incident", "healthy providers, then an adyen incident starting an hour before "
            "the end of the timeline: 10 minutes in which most calls charge and then time out, "
            "10 minutes degraded (most calls fail or time out, slowly), then it recovers", _CALM,
            incident=Incident("adyen", (
                (timedelta(minutes=10), replace(_CALM, timeout_after_charge=0.9,
                                                lookup_unavailable=0.3)),
                (timedelta(minutes=10), replace(_CALM, server_error=0.6,
                                                timeout_before_charge=0.2,
                                                timeout_after_charge=0.15,
                                                lookup_unavailable=0.3, latency_mean_s=2.0,
                                                latency_p99_s=8.0)),
            ), timedelta(hours=1))),
        FaultProfile("chaos", "every fault at a high rate on every provider",
                     Faults(timeout_after_charge=0.12, timeout_before_charge=0.08,
                            server_error=0.2, decline=0.1, lookup_unavailable=0.35,
                            duplicate_notification=0.3, out_of_order_notification=0.3,
                            lost_notification=0.05, rate_limited=0.05, reset_after_charge=0.05,
                            notification_delay_s=20.0, latency_mean_s=0.8, latency_p99_s=5.0)),
    ]
}


def profile(name: str) -> FaultProfile:
    from engine.exceptions import ValidationError

    if name not in PROFILES:
        raise ValidationError("profile", f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return PROFILES[name]
