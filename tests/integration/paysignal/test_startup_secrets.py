"""The API and the worker refuse to start without real webhook secrets; two may be valid at once
during a rotation; there is no default secret."""

import time

import pytest
from engine.providers.simulated import InMemoryBook, Stripe, webhook_secret_variable
from typer.testing import CliRunner

from engine.providers import provider_names
from engine.providers.base import WebhookSignatureError
from paysignal.cli import app

GOOD = "9f2c" * 16


@pytest.mark.parametrize("command", ["api", "worker"])
@pytest.mark.parametrize(("value", "reason"), [
    (None, "is not set"), ("change-me-stripe-secret-please", "example value"),
    ("whsec_dev_stripe", "example value"), ("short", "at least 24 characters")])
def test_serve_refuses_to_start_without_a_real_secret_for_every_provider(
        monkeypatch: pytest.MonkeyPatch, tmp_path, command: str, value: str | None,  # type: ignore[no-untyped-def]
        reason: str) -> None:
    for provider in provider_names():
        monkeypatch.setenv(webhook_secret_variable(provider), GOOD)
    if value is None:
        monkeypatch.delenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE")
    else:
        monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", value)
    result = CliRunner().invoke(app, ["serve", command, "--database-url",
                                      f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "PAYSIGNAL_WEBHOOK_SECRET_STRIPE" in result.output and reason in result.output
    assert "secrets.token_hex" in result.output


def test_a_database_password_left_at_its_example_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for provider in provider_names():
        monkeypatch.setenv(webhook_secret_variable(provider), GOOD)
    result = CliRunner().invoke(app, ["serve", "api", "--database-url",
                                      "postgresql://paysignal_app:change-me-app-db-password"
                                      "@127.0.0.1:1/paysignal"])
    assert result.exit_code == 2 and "PAYSIGNAL_DATABASE_URL" in result.output
    assert "change-me-app" not in result.output  # the refusal never echoes the password


def test_without_a_secret_every_notification_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", raising=False)
    provider = Stripe(InMemoryBook())
    body = b'{"id": "evt_1"}'
    forged = {"stripe-signature": f"t={int(time.time())},v1={'00' * 32}"}
    with pytest.raises(WebhookSignatureError, match="no webhook secret"):
        provider.verify(forged, body, time.time())


def test_during_a_rotation_both_secrets_verify_and_the_new_one_signs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = "n" * 40, "o" * 40
    now = int(time.time())
    body = b'{"id": "evt_1"}'
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", old)
    signed_with_old = Stripe(InMemoryBook()).sign(body, now)
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", f"{new},{old}")
    rotating = Stripe(InMemoryBook())
    rotating.verify({k.lower(): v for k, v in signed_with_old.items()}, body, now)
    signed_with_new = rotating.sign(body, now)
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", new)
    Stripe(InMemoryBook()).verify({k.lower(): v for k, v in signed_with_new.items()}, body, now)
    with pytest.raises(WebhookSignatureError):
        Stripe(InMemoryBook()).verify({k.lower(): v for k, v in signed_with_old.items()},
                                         body, now)
