"""One typed settings object: every bad value named with its variable, production's retries
with a budget and the operating system's jitter, the simulation's through the same function."""

import random

import pytest

from engine.exceptions import ConfigurationError
from engine.testing import ManualClock
from paysignal.bootstrap import Environment, retry_policy
from paysignal.settings import load_settings, variables


def test_defaults_are_productions() -> None:
    settings = load_settings({})
    assert (settings.retry_max_attempts, settings.retry_budget_ratio,
            settings.retry_budget_min_retries, settings.api_concurrency) == (4, 0.2, 10, 16)


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("PAYSIGNAL_API_CONCURRENCY", "many", "must be a whole number"),
    ("PAYSIGNAL_API_CONCURRENCY", "0", "greater than or equal to 1"),
    ("PAYSIGNAL_RETRY_BUDGET_RATIO", "1.5", "less than or equal to 1"),
    ("PAYSIGNAL_WEBHOOK_TOLERANCE_S", "-1", "greater than 0"),
    ("PAYSIGNAL_ALERT_BREAK_AMOUNT_MINOR", "12.5", "must be a whole number"),
    ("PAYSIGNAL_LOG_LEVEL", "LOUD", "'DEBUG', 'INFO'"),
    # the sections the layers below the wiring read themselves are checked at start too
    ("PAYSIGNAL_PAYOUT_ARRIVAL_DAYS", "61", "less than or equal to 60"),
    ("PAYSIGNAL_FEE_TOLERANCE_MINOR", "a little", "must be a whole number"),
    ("PAYSIGNAL_DB_PING_IDLE_S", "soon", "must be a number, or must be 'off'"),
    ("PAYSIGNAL_DASHBOARD_REFRESH_S", "0.5", "greater than or equal to 1"),
    ("PAYSIGNAL_OUTBOX_SINK", "carrier-pigeon", "must be 'database' or 'kafka'"),
    ("PAYSIGNAL_SLI_BACKEND", "graphite", "must be 'database' or 'prometheus'"),
])
def test_a_bad_value_names_its_variable_its_value_and_the_rule(variable: str, value: str,
                                                              reason: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value})
    assert str(raised.value).startswith(f"{variable}={value!r}: ")
    assert reason in str(raised.value)


def test_every_bad_variable_is_named_at_once_and_empty_means_unset() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"PAYSIGNAL_RETRY_MAX_ATTEMPTS": "0", "PAYSIGNAL_MAX_BODY_BYTES": "x"})
    assert "PAYSIGNAL_RETRY_MAX_ATTEMPTS" in str(raised.value)
    assert "PAYSIGNAL_MAX_BODY_BYTES" in str(raised.value)
    assert load_settings({"PAYSIGNAL_API_CONCURRENCY": " "}).api_concurrency == 16
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_RETRY_MAX_BACKOFF_S must be at least"):
        load_settings({"PAYSIGNAL_RETRY_MAX_BACKOFF_S": "0.01"})


def test_production_retries_within_a_budget_with_the_operating_systems_jitter() -> None:
    policy = retry_policy(load_settings({}))
    assert policy.budget is not None and policy.budget.ratio == 0.2
    assert isinstance(policy.rng, random.SystemRandom)
    # five processes' first waits differ (a shared seed would make them equal)
    settings = load_settings({})
    waits = {policy.wait.delay(3, retry_policy(settings).rng) for _ in range(5)}
    assert len(waits) == 5


def test_a_simulation_replays_its_waits_from_its_seed_through_the_same_function() -> None:
    clock = ManualClock()

    def waits(seed: int) -> list[float]:
        policy = retry_policy(load_settings({}), Environment(
            clock=clock.now, monotonic=clock.monotonic, sleep=clock.advance,
            rng=random.Random(seed)))
        result = policy.run(lambda n: n, retry_if=lambda n: n < 4)
        return result.delays

    assert waits(7) == waits(7) != waits(8)
    assert len(waits(7)) == 3


def test_the_budget_refuses_retries_past_its_floor() -> None:
    clock = ManualClock()
    policy = retry_policy(load_settings({"PAYSIGNAL_RETRY_BUDGET_MIN_RETRIES": "2",
                                         "PAYSIGNAL_RETRY_BUDGET_RATIO": "0"}),
                          Environment(clock=clock.now, monotonic=clock.monotonic,
                                      sleep=clock.advance, rng=random.Random(0)))
    stopped = [policy.run(lambda n: n, retry_if=lambda n: True).stopped_by for _ in range(2)]
    assert stopped == ["budget", "budget"]
    assert policy.budget is not None and policy.budget.exhausted_count == 2


def test_the_variables_are_the_documented_ones() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[3] / "docs" / "configuration.md").read_text()
    for name in variables():
        assert f"`{name}`" in page


def test_a_choice_that_needs_another_variable_names_both() -> None:
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS: required "
                                                 "when PAYSIGNAL_OUTBOX_SINK=kafka"):
        load_settings({"PAYSIGNAL_OUTBOX_SINK": "kafka"})
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_PROMETHEUS_URL: required when "
                                                 "PAYSIGNAL_SLI_BACKEND=prometheus"):
        load_settings({"PAYSIGNAL_SLI_BACKEND": "prometheus"})


def test_no_module_reads_a_setting_but_through_the_one_reader() -> None:
    """Every variable of Settings is read by engine.environment.read_settings; a module that
    read one of them from os.environ itself could apply other rules."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    names = "|".join(variables())
    direct = re.compile(rf"(environ|getenv)[^\n]*[\"']({names})[\"']")
    offenders = [f"{path.relative_to(root)}: {m.group(2)}"
                 for package in ("engine", "slo", "alerts", "dashboard", "paysignal")
                 for path in (root / package).rglob("*.py")
                 for m in direct.finditer(path.read_text())]
    assert offenders == []
