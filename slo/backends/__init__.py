"""SLI backends, registered explicitly by name: each counts an SLO's good and total events
over a time range."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from engine.exceptions import ConfigurationError
from slo.maths import Counts
from slo.spec import SLO


class Backend(Protocol):
    name: str

    def prepare(self, slos: list[SLO], at: datetime) -> int:
        """Bring any aggregates up to date before counting; returns the events read."""

    def counts(self, slo: SLO, start: datetime, end: datetime) -> Counts:
        """Good and total events of the SLO in [start, end)."""

    def minute_counts(self, slo: SLO, start: datetime, end: datetime) -> list[Counts]:
        """Per-minute counts in [start, end) (Timeslices budgeting)."""


def _database(**options: Any) -> Backend:
    from slo.backends.database import DatabaseBackend

    return DatabaseBackend(options["engine"])


def _prometheus(**options: Any) -> Backend:
    from slo.backends.prometheus import PrometheusBackend

    url = options.get("prometheus_url")
    if not url:
        raise ConfigurationError("the prometheus backend needs --prometheus-url "
                                 "(or PAYSIGNAL_PROMETHEUS_URL)")
    return PrometheusBackend(url)


BACKENDS: dict[str, Callable[..., Backend]] = {"database": _database, "prometheus": _prometheus}


def make_backend(name: str, **options: Any) -> Backend:
    if name not in BACKENDS:
        raise ConfigurationError(f"SLI backend {name!r} is not registered "
                                 f"(registered: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](**options)
