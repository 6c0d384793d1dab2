"""OpenSLO definitions: the shipped set, and precise errors for invalid files."""

import re
from pathlib import Path

import pytest

from slo.spec import DEFINITIONS_DIR, DefinitionError, load_definitions

VALID = (DEFINITIONS_DIR / "webhook-processing-freshness.yaml").read_text()


def test_the_shipped_definitions_cover_engineering_and_finance() -> None:
    slos = {s.name: s for s in load_definitions()}
    for provider in ("stripe", "adyen", "paypal"):
        assert slos[f"authorization-technical-success-{provider}"].provider == provider
    for name in ("payment-api-availability", "provider-authorization-latency",
                 "unknown-outcome-resolution", "webhook-processing-freshness"):
        assert slos[name].owner == "payments"
    assert slos["reconciliation-completeness"].owner == "finance"
    assert not slos["reconciliation-completeness"].window.rolling
    assert slos["reconciliation-breaks-age"].bad is not None
    assert slos["unknown-outcome-resolution"].good.le == 900.0  # type: ignore[union-attr]


@pytest.mark.parametrize(("old", "new", "path", "reason"), [
    ("paysignal_webhook_processing_lag_seconds_bucket", "paysignal_webhook_lag_bucket",
     "spec.indicator.spec.ratioMetric.good.metricSource.spec.metric",
     "not in the signal catalogue"),
    ("target: 0.99", "target: 1.5", "spec.objectives[0].target", "between 0 and 1"),
    ("{le: \"30.0\"}", "{le: \"30.0\", merchant: m1}",
     "ratioMetric.good.metricSource.spec.matchers.merchant", "has no label 'merchant'"),
    ("duration: 7d", "duration: 7 days", "spec.timeWindow[0].duration", "not a duration"),
    ("budgetingMethod: Occurrences", "budgetingMethod: Sometimes", "spec.budgetingMethod",
     "Occurrences or Timeslices"),
    ("paysignal.dev/owner: payments", "paysignal.dev/owner: marketing",
     "metadata.annotations.paysignal.dev/owner", "payments, finance"),
])
def test_an_invalid_file_names_the_file_the_path_and_the_reason(
        tmp_path: Path, old: str, new: str, path: str, reason: str) -> None:
    assert old in VALID
    (tmp_path / "good.yaml").write_text(VALID.replace("webhook-processing-freshness", "other"))
    (tmp_path / "broken.yaml").write_text(VALID.replace(old, new))
    with pytest.raises(DefinitionError) as info:
        load_definitions(tmp_path)  # one bad file: nothing is loaded, not even the good one
    message = str(info.value)
    assert "broken.yaml" in message and path in message and reason in message, message
    assert "good.yaml" not in message


def test_duplicate_names_and_non_yaml_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    (tmp_path / "c.yaml").write_text("spec: [unclosed")
    with pytest.raises(DefinitionError) as info:
        load_definitions(tmp_path)
    assert "defined twice" in str(info.value) and "c.yaml: not YAML" in str(info.value)


@pytest.mark.parametrize(("old", "new", "path", "reason"), [
    # OpenSLO v1: an annotation prefix is a DNS subdomain; ours has a dot
    ("paysignal.dev/owner: payments", "paysignal/owner: payments",
     "metadata.annotations.paysignal/owner", "DNS subdomain with a dot, e.g. paysignal.dev/owner"),
    ("paysignal.dev/owner: payments", "paysignal.dev/owner: payments\n    Bad_Prefix/x: y",
     "metadata.annotations.Bad_Prefix/x", "must be a DNS subdomain"),
])
def test_annotation_keys_follow_the_openslo_rule(tmp_path: Path, old: str, new: str, path: str,
                                                 reason: str) -> None:
    assert old in VALID
    (tmp_path / "broken.yaml").write_text(VALID.replace(old, new))
    with pytest.raises(DefinitionError) as info:
        load_definitions(tmp_path)
    assert path in str(info.value) and reason in str(info.value), str(info.value)


CALENDAR = """
      calendar:
        startTime: 2026-01-01 00:00:00
        timeZone: UTC
      isRolling: false"""


@pytest.mark.parametrize(("calendar", "path", "reason"), [
    (CALENDAR, None, None),
    ("\n      isRolling: false", "spec.timeWindow[0].calendar", "needs calendar.startTime"),
    (CALENDAR.replace("2026-01-01 00:00:00", "'first of January'"),
     "spec.timeWindow[0].calendar.startTime", "a date and time"),
    (CALENDAR.replace("UTC", "Europe/Amsterdam"), "spec.timeWindow[0].calendar.timeZone",
     "aligns calendar windows in UTC"),
])
def test_a_calendar_window_carries_its_start_and_zone(tmp_path: Path, calendar: str,
                                                      path: str | None,
                                                      reason: str | None) -> None:
    text = re.sub(r"(- duration: )\S+\n(\s+isRolling: true)?", r"\g<1>1M" + calendar + "\n",
                  VALID, count=1)
    (tmp_path / "calendar.yaml").write_text(text)
    if path is None:
        assert not load_definitions(tmp_path)[0].window.rolling
        return
    assert reason is not None
    with pytest.raises(DefinitionError) as info:
        load_definitions(tmp_path)
    assert path in str(info.value) and reason in str(info.value), str(info.value)
