"""`paysignal slo rules`: valid for promtool, and the page alert fires for a 2 %-of-budget-in-
1-hour burn and stays quiet at half the sustainable burn (promtool test rules)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paysignal.cli.slo import app


@pytest.fixture(autouse=True)
def _promtool_installed() -> None:
    assert shutil.which("promtool"), "needs Debian's prometheus package (tests/run.sh installs it)"

SERIES = 'paysignal_provider_call_duration_seconds_count{{provider="stripe",' \
         'operation="authorize",outcome="{outcome}"}}'
BUCKET = 'paysignal_provider_call_duration_seconds_bucket{{provider="stripe",' \
         'operation="authorize",outcome="{outcome}",le="2.0"}}'


def _test_file(rules: Path, good_per_min: int, bad_per_min: int,
               alerts: list[dict[str, object]]) -> dict[str, object]:
    return {
        "rule_files": [str(rules)], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # no good series at all when there are no good events (a total outage)
                *([{"series": SERIES.format(outcome="succeeded"),
                    "values": f"0+{good_per_min}x180"}] if good_per_min else []),
                {"series": SERIES.format(outcome="unknown"), "values": f"0+{bad_per_min}x180"},
                # every call answered within 2 s: the latency SLO stays quiet
                *({"series": BUCKET.format(outcome=outcome), "values": f"0+{n}x180"}
                  for outcome, n in (("succeeded", good_per_min), ("unknown", bad_per_min))
                  if n),
            ],
            "alert_rule_test": [{"eval_time": "70m", "alertname": "SLOBurnRatePage",
                                 "exp_alerts": alerts}],
        }],
    }


def _page(tier: str) -> dict[str, object]:
    factor, short = {"1h": ("14.4", "5m"), "6h": ("6.0", "30m")}[tier]
    return {"exp_labels": {"slo": "authorization-technical-success-stripe",
                           "team": "payments", "provider": "stripe", "severity": "page",
                           "burn_tier": tier},
            "exp_annotations": {
                "objective": "0.995", "runbook_url": "http://127.0.0.1:8501/runbooks?alert=SLOBurnRatePage",
                "summary": ("Authorization technical success (stripe): burning the 30d "
                            f"error budget at over {factor}x over {tier} and {short}")}}


@pytest.mark.slow
def test_rules_pass_promtool_and_page_only_on_a_fast_burn(tmp_path: Path) -> None:
    rules = tmp_path / "slo.rules.yml"
    result = CliRunner().invoke(app, ["rules", "--out", str(rules)])
    assert result.exit_code == 0, result.output
    check = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(rules.read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {a["labels"]["severity"] for a in alerts} == {"page", "ticket"}
    assert all(a["annotations"]["runbook_url"] and a["labels"]["slo"] for a in alerts)
    # objective 99.5 %: the budget is 0.5 % of events. 2 % of a 30-day budget in one hour is a
    # 14.4x burn: 7.2 % errors. 8 % errors pages (the 6 h tier too: it also sees 8 %).
    fast = _test_file(rules, 92, 8, [_page("1h"), _page("6h")])
    slow = _test_file(rules, 399, 1, [])  # 0.25 % errors: 0.5x, never a page
    outage = _test_file(rules, 0, 50, [_page("1h"), _page("6h")])  # nothing succeeds: pages
    for case in (fast, slow, outage):
        spec = tmp_path / "case.yml"
        spec.write_text(yaml.safe_dump(case))
        run = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stdout + run.stderr
