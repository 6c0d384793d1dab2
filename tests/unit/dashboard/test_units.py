"""The dashboard's pure parts: filters from links, logins, roles and money formatting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dashboard.auth import (
    BindRefusedError,
    LoginError,
    Role,
    check_bind,
    login_configured,
    oidc_user,
)
from dashboard.filters import FilterError, Filters, from_params
from dashboard.queries import money

TODAY = date(2026, 11, 23)


def test_filters_round_trip_through_the_url() -> None:
    f = Filters(date(2026, 11, 1), date(2026, 11, 20), "paypal", "EUR", "mer_1")
    assert from_params(f.to_params(), TODAY) == f
    assert from_params({}, TODAY) == Filters(date(2026, 11, 17), date(2026, 11, 24))


@pytest.mark.parametrize(("params", "field", "reason"), [
    ({"from": "2026-13-01"}, "from", "not a date"),
    ({"from": "2026-11-20", "to": "2026-11-01"}, "to", "before from"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "from", "at most 400 days"),
    ({"provider": "east pay"}, "provider", "provider name"),
    ({"currency": "EURO"}, "currency", "ISO 4217"),
    ({"merchant": "m;drop"}, "merchant", "merchant id"),
])
def test_bad_filters_name_the_field_and_the_reason(params, field, reason) -> None:
    with pytest.raises(FilterError) as info:
        from_params(params, TODAY)
    assert info.value.field == field and reason in info.value.reason


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (123456, "EUR", "EUR 1,234.56"), (-5, "USD", "USD -0.05"), (1500, "JPY", "JPY 1,500"),
    (1234, "KWD", "KWD 1.234"), (None, "EUR", "—")])
def test_money_is_exact_in_each_currencys_minor_units(minor, currency, text) -> None:
    assert money(minor, currency) == text


def verified(email: str) -> dict[str, object]:
    return {"email": email, "email_verified": True, "sub": "opaque-123"}


def test_oidc_users_get_mapped_roles_and_everyone_else_is_refused() -> None:
    env = {"PAYSIGNAL_DASHBOARD_ROLES": "ana@x.test=finance,engineering; bo@x.test=viewer"}
    assert oidc_user(verified("Ana@x.test"), env).roles == {Role.FINANCE, Role.ENGINEERING}
    assert oidc_user(verified("bo@x.test"), env).roles == {Role.VIEWER}
    with pytest.raises(LoginError, match="not allowed"):
        oidc_user(verified("cy@x.test"), env)  # the identity provider accepts everyone
    with pytest.raises(LoginError, match="'admin' is not a role"):
        oidc_user(verified("ana@x.test"), {"PAYSIGNAL_DASHBOARD_ROLES": "ana@x.test=admin"})


def test_an_allowed_domain_may_view_and_nothing_more() -> None:
    env = {"PAYSIGNAL_DASHBOARD_ALLOWED_DOMAINS": "x.test, corp.example"}
    assert oidc_user(verified("cy@x.test"), env).roles == {Role.VIEWER}
    with pytest.raises(LoginError, match="not allowed"):
        oidc_user(verified("cy@x.test.evil.example"), env)


@pytest.mark.parametrize("claims", [
    {"email": "ana@x.test", "email_verified": False},
    {"email": "ana@x.test"},
    {"sub": "ana@x.test", "email_verified": True},  # no fallback to the opaque subject
])
def test_oidc_needs_a_verified_email(claims: dict[str, object]) -> None:
    env = {"PAYSIGNAL_DASHBOARD_ROLES": "ana@x.test=finance"}
    with pytest.raises(LoginError):
        oidc_user(claims, env)


def test_oidc_counts_as_a_login_when_streamlit_secrets_have_auth(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n')
    assert login_configured(False, [secrets]) and not login_configured(False, [tmp_path / "none"])
    assert login_configured(True, [tmp_path / "none"])  # named accounts are a login too
    secrets.write_text("[auth\n")
    with pytest.raises(LoginError, match="not valid TOML"):
        login_configured(False, [secrets])


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_login(address: str) -> None:
    check_bind(address, login=False)


@pytest.mark.parametrize("address", ["0.0.0.0", "10.1.2.3", "", None, "example.test"])
def test_anything_else_needs_a_login(address: str | None) -> None:
    with pytest.raises(BindRefusedError, match="without a login"):
        check_bind(address, login=False)
    check_bind(address, login=True)


def test_alert_links_open_dashboard_pages_that_exist() -> None:
    from alerts.model import Alert
    from dashboard.pages import PAGES

    paths = {p.url_path for p in PAGES}
    for alert in (Alert.of("OutboxBacklog", "backlog", provider="paypal"),
                  Alert.of("SLOBurnRatePage", "burn", slo="api-availability")):
        path = alert.dashboard_url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        assert path in paths, (alert.dashboard_url, paths)


def test_an_incident_link_names_the_alert_where_to_look_and_its_start_in_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone
    from urllib.parse import parse_qs, urlsplit

    from alerts.model import Alert

    started = datetime(2026, 12, 2, 23, 1, 42, tzinfo=timezone(timedelta(hours=2)))
    alert = Alert.of("SLOBurnRatePage", "burn", slo="authorization-technical-success-adyen",
                     provider="adyen", burn_tier="1h")
    link = urlsplit(Alert(alert.name, alert.labels, alert.summary, starts_at=started)
                    .dashboard_url)
    assert link.path == "/incident"
    assert parse_qs(link.query) == {"alert": ["SLOBurnRatePage"], "provider": ["adyen"],
                                    "slo": ["authorization-technical-success-adyen"],
                                    "starts": ["2026-12-02T21:01Z"]}  # UTC, to the minute
    assert started.astimezone(UTC).hour == 21
    assert "starts" not in alert.dashboard_url  # detected, not yet firing: no start


def test_the_time_axis_takes_the_finest_bucket_that_fits() -> None:
    from datetime import UTC, datetime, timedelta

    from dashboard.timelines import MAX_POINTS, bucket_minutes

    start = datetime(2026, 12, 2, tzinfo=UTC)
    assert bucket_minutes(start, start + timedelta(hours=5)) == 1
    assert bucket_minutes(start, start + timedelta(hours=6, minutes=1)) == 5
    assert bucket_minutes(start, start + timedelta(days=7)) == 60
    assert bucket_minutes(start, start + timedelta(days=400)) == 1440
    for days in (1, 2, 7, 30, 90):
        minutes = bucket_minutes(start, start + timedelta(days=days))
        assert days * 1440 / minutes <= MAX_POINTS
