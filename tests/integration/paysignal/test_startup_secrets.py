"""The API and the worker refuse to start without what verifies each enabled provider's
notifications (webhook secrets, PayPal's webhook id); a provider without credentials is
disabled and start-up says so; two secrets may be valid at once during a rotation; there is no
default secret."""

import time

import pytest
from typer.testing import CliRunner

from engine.providers.base import WebhookSignatureError
from engine.providers.registry import new_webhook_credentials
from engine.providers.sandbox.registry import sandbox_environment
from engine.providers.stripe import StripeConfig, StripeConnector, sign
from paysignal.cli import app

GOOD = "9f2c" * 16


@pytest.fixture
def providers_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox_environment("http://127.0.0.1:9",
                                           new_webhook_credentials()).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", GOOD)


@pytest.mark.parametrize("command", ["api", "worker"])
@pytest.mark.parametrize(("value", "reason"), [
    (None, "is not set"), ("change-me-stripe-secret-please", "example value"),
    ("whsec_dev_stripe", "example value"), ("short", "at least 24 characters")])
def test_serve_refuses_to_start_without_a_real_secret_for_every_provider(
        monkeypatch: pytest.MonkeyPatch, tmp_path, providers_configured: None,
        command: str, value: str | None, reason: str) -> None:
    if value is None:
        monkeypatch.delenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE")
    else:
        monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", value)
    result = CliRunner().invoke(app, ["serve", command, "--database-url",
                                      f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "PAYSIGNAL_WEBHOOK_SECRET_STRIPE" in result.output and reason in result.output
    assert "secrets.token_hex" in result.output


def test_paypal_needs_its_webhook_id_and_no_provider_at_all_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path, providers_configured: None) -> None:
    monkeypatch.delenv("PAYSIGNAL_PAYPAL_WEBHOOK_ID")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(app, ["serve", "api", "--database-url", url])
    assert result.exit_code == 2 and "PAYSIGNAL_PAYPAL_WEBHOOK_ID: is not set" in result.output
    for name in ("PAYSIGNAL_STRIPE_API_KEY", "PAYSIGNAL_ADYEN_API_KEY",
                 "PAYSIGNAL_PAYPAL_CLIENT_ID", "PAYSIGNAL_PAYPAL_CLIENT_SECRET"):
        monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["serve", "api", "--database-url", url])
    assert result.exit_code == 2 and "no provider is configured" in result.output


def test_a_database_password_left_at_its_example_is_refused(
        providers_configured: None) -> None:
    result = CliRunner().invoke(app, ["serve", "api", "--database-url",
                                      "postgresql://paysignal_app:change-me-app-db-password"
                                      "@127.0.0.1:1/paysignal"])
    assert result.exit_code == 2 and "PAYSIGNAL_DATABASE_URL" in result.output
    assert "change-me-app" not in result.output  # the refusal never echoes the password


def connector(monkeypatch: pytest.MonkeyPatch) -> StripeConnector:
    monkeypatch.setenv("PAYSIGNAL_STRIPE_API_KEY", "sk_test_x")
    config = StripeConfig.from_environment()
    assert config is not None
    return StripeConnector(config)


def test_without_a_secret_every_notification_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", raising=False)
    body = b'{"id": "evt_1"}'
    forged = {"stripe-signature": f"t={int(time.time())},v1={'00' * 32}"}
    with pytest.raises(WebhookSignatureError, match="no webhook secret"):
        connector(monkeypatch).verify_notifications(forged, body, time.time(), 300)


def test_during_a_rotation_both_secrets_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = "n" * 40, "o" * 40
    now = int(time.time())
    body = b'{"id": "evt_1", "type": "refund.created", "data": {"object": {"id": "re_1", ' \
           b'"status": "succeeded", "amount": 5, "currency": "usd", "payment_intent": "pi_1", ' \
           b'"metadata": {"paysignal_payment_id": "p"}}}}'
    signed_with_old = {"stripe-signature": sign(old, body, now)}
    signed_with_new = {"stripe-signature": sign(new, body, now)}
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", f"{new},{old}")
    rotating = connector(monkeypatch)
    for headers in (signed_with_old, signed_with_new):
        assert rotating.verify_notifications(headers, body, now, 300)
    monkeypatch.setenv("PAYSIGNAL_WEBHOOK_SECRET_STRIPE", new)
    with pytest.raises(WebhookSignatureError):
        connector(monkeypatch).verify_notifications(signed_with_old, body, now, 300)
