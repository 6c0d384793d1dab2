"""Evaluate SLOs as of a moment through a backend, and store the results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from engine.storage.tables import slo_evaluations
from slo import maths
from slo.backends import Backend
from slo.maths import Counts
from slo.spec import SLO


def window_bounds(slo: SLO, at: datetime) -> tuple[datetime, datetime, timedelta]:
    """(start, end, full length) of the SLO window that `at` falls in. A calendar window starts
    at its period's start, so its budget is whole at that moment (nothing before leaks in)."""
    if slo.window.rolling:
        assert slo.window.duration is not None
        return at - slo.window.duration, at, slo.window.duration
    unit = slo.window.calendar_unit or "M"
    start = maths.calendar_window_start(at, unit)
    beyond = {"d": 1, "w": 7, "M": 32, "Q": 93, "Y": 367}[unit]  # lands inside the next period
    following = maths.calendar_window_start(start + timedelta(days=beyond), unit)
    return start, at, following - start


@dataclass(frozen=True)
class Evaluation:
    slo: SLO
    at: datetime
    counts: Counts
    window_start: datetime
    budget: maths.Budget
    burn_rates: dict[str, float]
    conditions: list[maths.Condition]
    exhaustion_in: timedelta | None
    policy: list[str]

    @property
    def sli(self) -> float | None:
        """Good / total events in the window; None when there were none (no data, which is
        not 100 %)."""
        return maths.attainment(self.counts) if self.counts.total else None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.slo.name, "display_name": self.slo.display_name,
            "owner": self.slo.owner, "provider": self.slo.provider,
            "at": self.at.isoformat(), "window": {"duration": self.slo.window.text,
                                                  "rolling": self.slo.window.rolling,
                                                  "start": self.window_start.isoformat()},
            "sli": None if self.sli is None else round(self.sli, 6), "objective": self.slo.target,
            "events": {"good": self.counts.good, "total": self.counts.total},
            "budget_remaining": round(self.budget.remaining, 6),
            "budget": {"allowed_bad": round(self.budget.allowed_bad, 3),
                       "consumed_bad": self.budget.consumed_bad,
                       "remaining_bad": round(self.budget.remaining_bad, 3),
                       "consumed": round(self.budget.consumed, 6)},
            "burn_rates": {k: round(v, 4) for k, v in self.burn_rates.items()},
            "conditions": [c.as_json() for c in self.conditions],
            "exhaustion_in_seconds": (None if self.exhaustion_in is None
                                      else int(self.exhaustion_in.total_seconds())),
            "policy": self.policy,
        }


def _counts(backend: Backend, slo: SLO, start: datetime, end: datetime) -> Counts:
    if slo.budgeting == "Timeslices" and slo.timeslice_window and slo.timeslice_target:
        minutes = backend.minute_counts(slo, start, end)
        size = int(slo.timeslice_window.total_seconds() // 60)
        slices = [sum(minutes[i:i + size], Counts(0, 0)) for i in range(0, len(minutes), size)]
        return maths.timeslice_counts(slices, slo.timeslice_target)
    return backend.counts(slo, start, end)


def evaluate_slo(backend: Backend, slo: SLO, at: datetime) -> Evaluation:
    start, end, length = window_bounds(slo, at)
    counts = _counts(backend, slo, start, end)
    budget = maths.budget(counts, slo.target)
    spans = sorted({w.long for w in slo.burn_windows} | {w.short for w in slo.burn_windows})
    # burn windows never reach back before the SLO window: a new period starts with all its budget
    window_counts = {span: _counts(backend, slo, max(start, at - span), at) for span in spans}
    burn = {maths._duration_label(span): maths.burn_rate(c, slo.target)
            for span, c in window_counts.items()}
    conditions = maths.firing_conditions(slo.burn_windows, window_counts, slo.target,
                                         slo.min_events)
    fastest = min(spans, default=timedelta(hours=1))
    hour = timedelta(hours=1) if timedelta(hours=1) in window_counts else fastest
    exhaustion = maths.time_to_exhaustion(budget, length,
                                          maths.burn_rate(window_counts[hour], slo.target))
    policy = []
    if counts.total and budget.remaining <= 0:
        policy.append(f"error budget exhausted: {_policy_action(slo)} until "
                      f"“{slo.display_name}” is met again")
    elif any(c.severity == "page" and not c.inhibited_by for c in conditions):
        policy.append(f"budget burning fast: {_policy_action(slo)} and page on-call")
    return Evaluation(slo, at, counts, start, budget, burn, conditions, exhaustion, policy)


def _policy_action(slo: SLO) -> str:
    """What the error-budget policy asks while the budget is spent, by who owns the SLO."""
    if slo.provider:
        return f"freeze risky rollouts for provider {slo.provider}"
    if slo.owner == "finance":
        return "put clearing reconciliation breaks ahead of new work"
    return "freeze risky engine releases"


def _audit_policy_changes(engine: Engine, results: list[Evaluation]) -> None:
    """A provider SLO whose policy changed since its last stored evaluation leaves a note for
    whoever changes that provider's rollout toggles next."""
    from engine.payments.toggles import record_policy

    for r in results:
        if not r.slo.provider:
            continue
        with engine.connect() as conn:
            last = conn.execute(select(slo_evaluations.c.result)
                                .where(slo_evaluations.c.slo == r.slo.name)
                                .order_by(slo_evaluations.c.id.desc()).limit(1)).scalar()
        before = json.loads(last)["policy"] if last else []
        if r.policy != before:
            note = "; ".join(r.policy) or "error budget policy lifted"
            record_policy(engine, r.slo.provider, r.slo.name, note)


def evaluate_all(engine: Engine, backend: Backend, slos: list[SLO], at: datetime | None = None,
                 store: bool = True) -> list[Evaluation]:
    at = (at or datetime.now(UTC)).astimezone(UTC)
    backend.prepare(slos, at)
    results = [evaluate_slo(backend, slo, at) for slo in slos]
    if store:
        _audit_policy_changes(engine, results)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(insert(slo_evaluations), [
                {"slo": r.slo.name, "at": at, "evaluated_at": now, "backend": backend.name,
                 "result": json.dumps(r.as_json())} for r in results])
    return results
