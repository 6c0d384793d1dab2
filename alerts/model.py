"""An alert as paysignal raises it: numbers in the summary, owner, runbook, incident link,
and a stable fingerprint of its identifying labels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from alerts.catalogue import BY_NAME
from slo.links import incident_url, runbook_url


def fingerprint(labels: dict[str, str]) -> str:
    """Stable across runs and processes: the same labels always give the same fingerprint."""
    text = "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Alert:
    name: str
    labels: dict[str, str]  # identifying: alertname, severity, team, and e.g. provider, slo
    summary: str
    details: dict[str, object] = field(default_factory=dict)
    starts_at: datetime | None = None

    @classmethod
    def of(cls, name: str, summary: str, details: dict[str, object] | None = None,
           **labels: str) -> Alert:
        spec = BY_NAME[name]
        return cls(name, {"alertname": name, "severity": spec.severity, "team": spec.team,
                          **{k: v for k, v in labels.items() if v}}, summary, details or {})

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def runbook_url(self) -> str:
        return runbook_url(self.name)

    @property
    def dashboard_url(self) -> str:
        """The dashboard's incident view: the alert, where to look, and its time window."""
        return incident_url(self.labels, self.starts_at)

    @property
    def impact(self) -> str:
        return BY_NAME[self.name].impact
