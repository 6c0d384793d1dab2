from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_migrations_after_a_healthy_postgres_with_no_secrets_inline() -> None:
    text = (ROOT / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"]
    assert any(v.startswith("pgdata:") for v in services["postgres"]["volumes"])
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgdata" in compose["volumes"]
    assert "change-me" not in text
    example = (ROOT / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "PAYSIGNAL_DATABASE_URL"):
        assert f"${{{name}:?" in text and f"{name}=" in example
