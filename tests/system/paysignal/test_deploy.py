"""compose.yaml and the configuration it mounts, checked with the real tools: Debian's
docker-compose validates the file against the Compose specification (Docker has no engine here,
so the stack is not run), promtool checks the Prometheus config and rules, amtool the
Alertmanager config. The generated files must equal what paysignal generates today."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SERVICES = {"postgres", "migrate", "api", "worker", "dashboard", "prometheus", "alertmanager",
            "otel-collector"}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: tests/run.sh installs it"
    return path


def compose(*args: str, env_file: Path = ROOT / ".env.example") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([tool("docker-compose"), "--env-file", str(env_file), "-f",
                           str(ROOT / "compose.yaml"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_compose_file_is_valid_with_every_service() -> None:
    checked = compose("config", "-q")
    assert checked.returncode == 0, checked.stderr
    # docker-compose 1.29 lists every service, profiled or not; the profiles are checked below
    listed = compose("--profile", "kafka", "--profile", "sandbox", "config", "--services")
    assert set(listed.stdout.split()) == SERVICES | {"kafka", "sandbox"}
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert {n for n, s in services.items() if "profiles" not in s} == SERVICES
    assert services["kafka"]["profiles"] == ["kafka"]  # only with --profile kafka
    assert services["sandbox"]["profiles"] == ["sandbox"]
    # production points at the providers' real hosts; the sandbox only when told to
    api = services["api"]["environment"]
    assert api["PAYSIGNAL_STRIPE_BASE_URL"].endswith(":-https://api.stripe.com}")
    assert "http://sandbox:" not in " ".join(str(v) for v in api.values())
    kraft = services["kafka"]["environment"]
    assert kraft["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert services["worker"]["environment"]["PAYSIGNAL_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


@pytest.mark.parametrize("secret", ["PAYSIGNAL_APP_DB_PASSWORD", "POSTGRES_PASSWORD"])
def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path, secret: str) -> None:
    example = (ROOT / ".env.example").read_text()
    partial = tmp_path / ".env"
    partial.write_text(re.sub(rf"^{secret}=.*$", "", example, flags=re.M))
    refused = compose("config", "-q", env_file=partial)
    assert refused.returncode != 0
    assert f"set {secret} in .env" in refused.stderr


def test_no_secret_is_written_in_compose_and_every_required_one_is_in_the_example() -> None:
    text = (ROOT / "compose.yaml").read_text()
    example = (ROOT / ".env.example").read_text()
    assert "change-me" not in text
    for name in re.findall(r"\$\{(\w+):\?", text):
        assert re.search(rf"^{name}=", example, re.M), f"{name} missing from .env.example"


def test_services_are_wired_to_each_other() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["postgres"]["healthcheck"]["test"]
    assert services["migrate"]["entrypoint"][-1] == "paysignal db upgrade && paysignal db roles"
    assert services["migrate"]["environment"]["PAYSIGNAL_DATABASE_URL"].startswith(
        "${PAYSIGNAL_OWNER_DATABASE_URL")
    for name in ("api", "worker", "dashboard"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == \
            "http://otel-collector:4318"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    assert targets == {"api:9100", "worker:9101"}
    assert "9100" in services["api"]["command"] and "9101" in services["worker"]["command"]
    assert "9100" not in str(services["api"]["ports"])  # metrics are never published
    assert "0.0.0.0" in services["worker"]["command"]  # reachable by Prometheus
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == \
        ["alertmanager:9093"]


def test_generated_rules_and_alertmanager_config_are_current(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from paysignal.cli.alerts import app as alerts_cli
    from paysignal.cli.slo import app as slo_cli

    env = {"PAYSIGNAL_DASHBOARD_URL": "http://localhost:8501", "PAYSIGNAL_RUNBOOK_BASE": ""}  # compose
    runner = CliRunner()
    rules, config = tmp_path / "rules.yml", tmp_path / "alertmanager.yml"
    assert runner.invoke(slo_cli, ["rules", "--out", str(rules)], env=env).exit_code == 0
    assert runner.invoke(alerts_cli, ["alertmanager-config", "--out", str(config)],
                         env=env).exit_code == 0
    stale = "is stale: regenerate it (see docs/production.md)"
    assert rules.read_text() == (DEPLOY / "prometheus" / "rules" /
                                 "paysignal-slo.rules.yml").read_text(), f"the rules file {stale}"
    assert config.read_text() == (DEPLOY / "alertmanager" / "alertmanager.yml").read_text(), \
        f"alertmanager.yml {stale}"


def test_promtool_accepts_the_prometheus_config_and_rules(tmp_path: Path) -> None:
    # the config names the rules by their path inside the container; point it at ours
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text().replace(
        "/etc/prometheus/rules/", f"{DEPLOY / 'prometheus' / 'rules'}/")
    local = tmp_path / "prometheus.yml"
    local.write_text(config)
    checked = subprocess.run([tool("promtool"), "check", "config", str(local)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout + checked.stderr


def test_amtool_accepts_the_alertmanager_config() -> None:
    checked = subprocess.run([tool("amtool"), "check-config",
                              str(DEPLOY / "alertmanager" / "alertmanager.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", ["deploy/otel/collector.yaml"])
def test_the_collector_receives_otlp_and_exports_traces(path: str) -> None:
    collector = yaml.safe_load((ROOT / path).read_text())
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_least_privilege_roles_and_unauthenticated_listeners_stay_on_loopback() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^PAYSIGNAL_DATABASE_URL=postgresql://paysignal_app:", example, re.M)
    assert re.search(r"^PAYSIGNAL_DASHBOARD_READ_URL=postgresql://paysignal_readonly:",
                     example, re.M)
    for name in ("prometheus", "alertmanager"):  # no authentication: never published
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
