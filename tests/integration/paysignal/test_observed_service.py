"""What `serve api` and `serve worker` expose before any traffic."""

from prometheus_client import generate_latest
from sqlalchemy import Engine

from paysignal.bootstrap import build_observed_service


def test_provider_call_series_exist_at_zero_before_the_first_call(
        db_engine: Engine, session_sandbox: object) -> None:
    """Prometheus's increase() cannot count a series' first value: without zero series, the
    failures of a burst right after a start would be invisible to the SLO rules."""
    service, metrics = build_observed_service(db_engine)  # the session sandbox's credentials
    assert sorted(service.gateways) == ["adyen", "paypal", "stripe"]
    text = generate_latest(metrics.registry).decode()
    for provider in service.gateways:
        for outcome in ("succeeded", "declined", "retryable_error", "unknown"):
            assert (f'paysignal_provider_call_duration_seconds_count{{operation="authorize",'
                    f'outcome="{outcome}",provider="{provider}"}} 0.0') in text
