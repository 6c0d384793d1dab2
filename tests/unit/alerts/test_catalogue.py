"""The alert catalogue and its runbooks: every alert has one, none is orphaned, and each says
what it means, what to check first, what to run, how to mitigate and when to escalate."""

from alerts.catalogue import CATALOGUE, RUNBOOKS_DIR

SECTIONS = ("## What it means", "## First checks", "## Mitigations", "## When to escalate")


def test_every_alert_has_a_runbook_and_no_runbook_is_orphaned() -> None:
    names = {a.name for a in CATALOGUE}
    assert len(names) == len(CATALOGUE)
    runbooks = {p.stem for p in RUNBOOKS_DIR.glob("*.md")}
    assert names - runbooks == set(), "alerts without a runbook"
    assert runbooks - names == set(), "runbooks without an alert"


def test_each_runbook_has_the_sections_on_call_needs() -> None:
    for alert in CATALOGUE:
        text = alert.runbook.read_text()
        assert text.startswith(f"# {alert.name}\n")
        for section in SECTIONS:
            assert section in text, (alert.name, section)
        assert alert.severity in ("page", "ticket", "info")
        assert alert.team in ("payments", "finance", "payments+finance")


def test_the_metrics_a_runbook_names_exist() -> None:
    """On call copies queries from the runbooks: a metric name that does not exist returns
    nothing, which reads as "all is well"."""
    import re

    from engine.observability.signals import CATALOGUE as METRICS

    names = {m.name for m in METRICS}
    known = names | {f"{n}_{s}" for n in names for s in ("count", "sum", "bucket")}
    for alert in CATALOGUE:
        named = set(re.findall(r"paysignal_[a-z_]+", alert.runbook.read_text()))
        assert named - known == set(), alert.name


def test_the_slo_rules_point_at_catalogue_runbooks() -> None:
    from slo.rules import rules_document
    from slo.spec import load_definitions

    names = {a.name for a in CATALOGUE}
    for group in rules_document(load_definitions())["groups"]:  # type: ignore[attr-defined]
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"] in names
                assert rule["annotations"]["runbook_url"].endswith(
                    f"/runbooks?alert={rule['alert']}")
