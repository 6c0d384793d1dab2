"""Routing: a table of label sets to receivers (continue, defaults, inhibition), config
errors that name the path, and agreement with Alertmanager's own router (amtool)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alerts.alertmanager import render_alertmanager_config
from alerts.routing import RoutingConfigError, load_config, parse_config
from paysignal.cli.alerts import app

TABLE = [
    ({"alertname": "SLOBurnRatePage", "severity": "page", "team": "payments", "slo": "a"},
     ["payments-pager", "log"]),
    ({"alertname": "DuplicateChargeFound", "severity": "page", "team": "payments+finance"},
     ["payments-pager", "finance-email", "log"]),
    ({"alertname": "ReconciliationBreaksAged", "severity": "ticket", "team": "finance"},
     ["finance-email", "log"]),
    ({"alertname": "SLOBurnRateTicket", "severity": "ticket", "team": "payments"}, ["log"]),
    ({"alertname": "Anything", "severity": "info"}, ["log"]),
    ({"alertname": "SLOBurnRatePage", "severity": "page", "team": "finance"},
     ["finance-email", "log"]),
]


@pytest.mark.parametrize(("labels", "receivers"), TABLE)
def test_label_sets_reach_the_expected_receivers(labels: dict[str, str],
                                                 receivers: list[str]) -> None:
    assert load_config().receivers_for(labels) == receivers


def test_a_firing_page_inhibits_the_ticket_for_the_same_slo_and_provider() -> None:
    config = load_config()
    page = {"alertname": "SLOBurnRatePage", "severity": "page", "slo": "s", "provider": "p"}
    ticket = {"alertname": "SLOBurnRateTicket", "severity": "ticket", "slo": "s",
              "provider": "p"}
    other = {**ticket, "provider": "q"}
    assert config.inhibited(ticket, [page])
    assert not config.inhibited(other, [page])  # another provider's ticket still goes out
    assert not config.inhibited(page, [ticket])


@pytest.mark.parametrize(("change", "path", "reason"), [
    ({"route": {"receiver": "nobody"}}, "route.receiver", "not a defined receiver"),
    ({"route": {"receiver": "log", "routes": [{"matchers": ["severity=page"]}]}},
     "route.routes[0].matchers[0]", "is not a matcher"),
    ({"route": {"receiver": "log", "group_wait": "soon"}}, "route.group_wait", "not a duration"),
    ({"route": {"receiver": "log", "routes": [{"matchers": ['a=~"("']}]}},
     "route.routes[0].matchers[0]", "missing"),
    ({"receivers": [{"name": "log", "carrier_pigeon": {}}]}, "receivers[0]", "exactly one of"),
])
def test_an_invalid_routing_file_names_the_path_and_the_reason(
        change: dict[str, object], path: str, reason: str) -> None:
    doc = {"route": {"receiver": "log"}, "receivers": [{"name": "log", "file": {"path": "x"}}],
           **change}
    with pytest.raises(RoutingConfigError) as info:
        parse_config(doc, "routes.yaml")
    assert path in str(info.value) and reason in str(info.value), str(info.value)


def test_the_route_command_answers_from_the_routing_the_service_uses(
        db_url: str, tmp_path: Path) -> None:
    from alerts.routing import DEFAULT_CONFIG, record_routing_in_use
    from engine.storage import db

    page = ["route", "--label", "severity=page", "--label", "team=payments", "--json",
            "--database-url", db_url]
    result = CliRunner().invoke(app, page)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == '["payments-pager", "log"]'
    assert f"routing: {DEFAULT_CONFIG} (the shipped default" in " ".join(result.stderr.split())
    demo = tmp_path / "routing.yaml"
    demo.write_text("route: {receiver: demo-file}\n"
                    "receivers: [{name: demo-file, file: {path: alerts.log}}]\n")
    engine = db.make_engine(db_url)
    record_routing_in_use(engine, demo, "worker")  # as `paysignal serve worker` does at start
    engine.dispose()
    result = CliRunner().invoke(app, page)
    assert result.stdout.strip() == '["demo-file"]'
    told = " ".join(result.stderr.split())
    assert f"routing: {demo.resolve()} (loaded by the worker at" in told
    demo.write_text(demo.read_text().replace("alerts.log", "other.log"))
    assert "the file has changed since" in " ".join(
        CliRunner().invoke(app, page).stderr.split())
    explicit = CliRunner().invoke(app, [*page, "--config", str(DEFAULT_CONFIG)])
    assert explicit.stdout.strip() == '["payments-pager", "log"]'
    bad = CliRunner().invoke(app, ["route", "--label", "oops"])
    assert bad.exit_code == 2 and "key=value" in bad.output


def test_the_rendered_alertmanager_config_passes_amtool_and_routes_the_same(
        tmp_path: Path) -> None:
    assert shutil.which("amtool"), "needs Debian's prometheus-alertmanager (tests/run.sh installs it)"
    rendered = tmp_path / "alertmanager.yml"
    result = CliRunner().invoke(app, ["alertmanager-config", "--out", str(rendered)])
    assert result.exit_code == 0, result.output
    check = subprocess.run(["amtool", "check-config", str(rendered)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    doc = yaml.safe_load(rendered.read_text())
    assert all("routing_key" not in c for r in doc["receivers"]
               for c in r.get("pagerduty_configs", []))  # secrets only as *_file paths
    assert render_alertmanager_config(load_config()) == rendered.read_text()
    for labels, receivers in TABLE:
        amtool = subprocess.run(["amtool", "config", "routes", "test",
                                 f"--config.file={rendered}",
                                 *[f"{k}={v}" for k, v in labels.items()]],
                                capture_output=True, text=True)
        assert amtool.stdout.strip().split(",") == receivers, (labels, amtool.stdout,
                                                               amtool.stderr)
