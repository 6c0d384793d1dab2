"""The PostgreSQL pool checks a connection before use only when it sat idle: one the server
closed meanwhile is replaced without the request noticing, and a connection in steady use costs
no extra round trip."""

import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from engine.exceptions import ConfigurationError
from engine.storage import db
from tests.support.postgres import ThrowawayPostgres, fresh_postgres_url


def _pool_whose_connection_the_server_closes(postgres: ThrowawayPostgres,
                                             ) -> tuple[Engine, int]:
    """A one-connection pool whose connection, just returned, the server then terminates
    (as a restart or an idle time-out would); returns the pool and that backend's pid."""
    engine = db.make_engine(fresh_postgres_url(postgres), pool_size=1)
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = db.make_engine(postgres.url)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()
    return engine, pid


def test_an_idle_connection_the_server_closed_is_replaced_before_use(
        postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSIGNAL_DB_PING_IDLE_S", "0.2")
    engine, first = _pool_whose_connection_the_server_closes(postgres)
    try:
        time.sleep(0.3)
        with engine.connect() as conn:  # checked: the request never sees the dead connection
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_checked_and_a_broken_one_fails_once(
        postgres: ThrowawayPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSIGNAL_DB_PING_IDLE_S", "60")
    engine, first = _pool_whose_connection_the_server_closes(postgres)
    try:
        # used a moment ago: not checked (no round trip spent), so its breakage shows once
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        with engine.connect() as conn:  # the pool replaced it
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        engine.dispose()


@pytest.mark.parametrize("value", ["soon", "-1", "100000"])
def test_a_bad_idle_setting_names_the_variable(value: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSIGNAL_DB_PING_IDLE_S", value)
    with pytest.raises(ConfigurationError, match="PAYSIGNAL_DB_PING_IDLE_S"):
        db.ping_idle_s()
    monkeypatch.setenv("PAYSIGNAL_DB_PING_IDLE_S", "off")
    assert db.ping_idle_s() is None


def test_the_api_works_on_as_many_requests_at_once_as_its_pool_holds(
        db_engine: Engine) -> None:
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from paysignal.api import api_app
    from paysignal.settings import load_settings
    from paysignal.testing import make_service

    service, _sandbox, _clock = make_service(db_engine)
    seen: list[float] = []
    app = api_app(db_engine, service, load_settings({"PAYSIGNAL_API_CONCURRENCY": "4"}))

    @app.get("/limit")
    async def limit() -> dict[str, int]:  # sync routes run on the limiter's threads
        seen.append(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return {}

    with TestClient(app) as client:
        assert client.get("/limit").status_code == 200
    assert seen == [4]
    for bad in ("0", "many", "1000"):
        with pytest.raises(ConfigurationError, match=f"PAYSIGNAL_API_CONCURRENCY='{bad}'"):
            load_settings({"PAYSIGNAL_API_CONCURRENCY": bad})
