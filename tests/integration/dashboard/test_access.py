"""Login, roles, where the dashboard may listen, and what it shows when the database is not
there: never a stack trace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit import config
from streamlit.testing.v1 import AppTest

from dashboard import actions
from dashboard.accounts import create_account
from dashboard.auth import PermissionDeniedError, local_user
from engine.storage import db
from engine.storage.tables import payments, recon_breaks
from tests.support.dashboard import APP, metric, open_page

PAYSIGNAL = str(Path(sys.executable).with_name("paysignal"))

pytestmark = pytest.mark.slow  # every test here opens the seeded demo day


def app(monkeypatch: pytest.MonkeyPatch, url: str) -> AppTest:
    monkeypatch.setenv("PAYSIGNAL_DATABASE_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_with_accounts_each_person_logs_in_as_themselves(monkeypatch, seeded_url) -> None:
    create_account(db.make_engine(seeded_url), "fran", "ledger-pass-1234", "finance")
    at = app(monkeypatch, seeded_url)
    assert not at.metric  # nothing shown before the login
    at.text_input(key="login_name").input("fran")
    at.text_input(key="login_password").input("wrong")
    at.button(key="login_submit").click().run()
    assert any("not a dashboard account" in e.value for e in at.error)
    assert not at.metric
    at.text_input(key="login_password").input("ledger-pass-1234")
    at.button(key="login_submit").click().run()
    assert not at.exception
    assert any("Signed in as **fran** (finance)" in c.value for c in at.sidebar.caption)
    assert metric(at, "Payments") != "0"
    assert not any("No login configured" in c.value for c in at.caption)


def test_without_a_login_it_refuses_to_serve_beyond_loopback(monkeypatch, seeded_url) -> None:
    config.set_option("server.address", "0.0.0.0")
    try:
        at = app(monkeypatch, seeded_url)
        assert any("refusing to listen on 0.0.0.0 without a login" in e.value for e in at.error)
        assert not at.metric and not at.dataframe
        create_account(db.make_engine(seeded_url), "vi", "look-only-2345", "viewer")
        at = app(monkeypatch, seeded_url)  # with a login it may: the login form shows
        assert not at.error and at.text_input(key="login_password")
    finally:
        config.set_option("server.address", "127.0.0.1")


def test_serve_dashboard_refuses_a_public_address_without_a_login(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSIGNAL_DASHBOARD")}
    done = subprocess.run([PAYSIGNAL, "serve", "dashboard", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a login" in " ".join(done.stderr.split())


def test_roles_are_enforced_by_the_actions_not_only_the_buttons(monkeypatch, seeded_engine) -> None:
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "engineering")
    engineer = local_user()
    with seeded_engine.connect() as conn:
        break_id = conn.execute(select(recon_breaks.c.id).limit(1)).scalar_one()
    with pytest.raises(PermissionDeniedError, match="needs the finance role"):
        actions.assign_break(seeded_engine, engineer, break_id, "eve", "mine now")
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_LOCAL_ROLES", "finance")
    with pytest.raises(PermissionDeniedError, match="needs the engineering role"):
        actions.silence(seeded_engine, local_user(), ['alertname="X"'], 1, "quiet")
    with pytest.raises(PermissionDeniedError, match="needs the engineering role"):
        actions.set_toggle(seeded_engine, local_user(), "paypal", "shadow", "try it")


def test_a_dead_database_gets_a_banner_not_a_trace(monkeypatch, postgres) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port + 1}/nothing"
    at = app(monkeypatch, dead)
    assert any("Database unavailable" in e.value for e in at.error)
    assert not at.metric


def test_an_empty_database_explains_what_to_run(monkeypatch, db_url) -> None:
    at = app(monkeypatch, db_url)
    assert any("No payments yet — run `paysignal demo`" in i.value for i in at.info)
    for page in ("payments", "reconciliation", "slos"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception and at.info, page


def test_no_database_at_all_says_how_to_make_one(monkeypatch, tmp_path) -> None:
    at = app(monkeypatch, f"sqlite:///{tmp_path / 'nothing-here.db'}")
    assert any("No paysignal database here yet" in i.value for i in at.info)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by tests/run.sh")
def test_reads_work_through_a_read_only_role(monkeypatch, postgres, seeded_url) -> None:
    name = seeded_url.rsplit("/", 1)[1]
    subprocess.run(["psql", "-q", "-d", name, "-c",
                    "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='dash_ro') "
                    "THEN CREATE ROLE dash_ro LOGIN; END IF; END$$; "
                    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO dash_ro;"],
                   env=postgres.libpq_env, check=True)
    read_only = seeded_url.replace("postgres@", "dash_ro@")
    monkeypatch.setenv("PAYSIGNAL_DASHBOARD_READ_URL", read_only)
    engine = db.make_engine(read_only)
    with pytest.raises(Exception, match="permission denied"), engine.begin() as conn:
        conn.execute(payments.delete())  # the role really is read-only
    engine.dispose()
    at = open_page(monkeypatch, seeded_url)
    total = db.make_engine(seeded_url)
    with total.connect() as conn:
        count = conn.execute(select(func.count()).select_from(payments)).scalar_one()
    total.dispose()
    assert metric(at, "Payments") == f"{count:,}"


test_reads_work_through_a_read_only_role = pytest.mark.parametrize(
    "seeded_url", ["postgres"], indirect=True)(test_reads_work_through_a_read_only_role)
