"""Shared Streamlit plumbing: settings, cached engines and queries, the signed-in user, the
filters in the URL, and the banners every page shows."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from dashboard import accounts, auth, queries, timelines
from dashboard.filters import PRESET_DAYS, FilterError, Filters, from_params
from dashboard.settings import DashboardSettings
from engine.environment import read_settings
from engine.exceptions import ConfigurationError, PaysignalError
from engine.providers import provider_names
from engine.storage.db import current_revision, database_url, head_revision, make_engine

T = TypeVar("T")
READ_URL_ENV = "PAYSIGNAL_DASHBOARD_READ_URL"
CACHE_TTL_S = 10


def dashboard_settings() -> DashboardSettings:
    """The dashboard's settings; a bad one is shown and its default used (a page must open)."""
    try:
        return read_settings(DashboardSettings)
    except ConfigurationError as exc:
        st.error(f"{exc}; using the defaults")
        return DashboardSettings.model_validate({})


@dataclass(frozen=True)
class Context:
    user: auth.User
    login: bool
    filters: Filters
    write_url: str
    read_url: str
    refresh_s: float
    has: dict[str, bool]

    @property
    def read(self) -> Engine:
        return engine_for(self.read_url)

    @property
    def write(self) -> Engine:
        return engine_for(self.write_url)


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    return make_engine(url, pool_size=4)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def cached(name: str, url: str, *args: Any) -> Any:
    """A read from dashboard.queries or dashboard.timelines by name, cached for CACHE_TTL_S per
    arguments."""
    module = queries if hasattr(queries, name) else timelines
    return getattr(module, name)(engine_for(url), *args)


def query(ctx: Context, name: str, *args: Any) -> Any:
    return cached(name, ctx.read_url, *args)


def clear_cache() -> None:
    cached.clear()
    _database_state.clear()


# --- the checks before any page ----------------------------------------------------------

def check_bind(login: bool) -> None:
    address = st.get_option("server.address")
    try:
        auth.check_bind(address, login)
    except auth.BindRefusedError as exc:
        st.error(str(exc))
        st.stop()


def current_user(login: bool, engine: Engine) -> auth.User:
    """The signed-in user; shows the login and stops the page until there is one."""
    if not login:
        return auth.local_user()
    if auth.oidc_configured():
        if not st.user.is_logged_in:
            st.title("paysignal")
            st.button("Log in", on_click=st.login, type="primary")
            st.stop()
        try:
            return auth.oidc_user(dict(st.user))
        except auth.LoginError as exc:
            st.error(str(exc))
            st.button("Log out", on_click=st.logout)
            st.stop()
    user = st.session_state.get("user")
    if isinstance(user, auth.User):
        return user
    st.title("paysignal — log in")
    with st.form("login"):
        name = st.text_input("Account name (your writes are audited under it)",
                             key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary", key="login_submit")
    if submitted:
        try:
            st.session_state["user"] = accounts.log_in(engine, name, password)
            st.rerun()
        except auth.LoginError as exc:
            st.error(str(exc))
    st.stop()
    raise AssertionError("unreachable")


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _database_state(read_url: str) -> tuple[str | None, dict[str, bool]]:
    engine = engine_for(read_url)
    revision = current_revision(engine)
    return revision, (queries.has_data(engine) if revision else {})


def database_ready(read_url: str) -> dict[str, bool]:
    """A clear banner instead of a stack trace when the database is down or not set up."""
    try:
        revision, has = _database_state(read_url)
        if revision is None:
            st.info("No paysignal database here yet — run `paysignal demo` to create one with a "
                    "day of simulated traffic, or `paysignal db upgrade` for an empty one.")
            st.stop()
        if revision != head_revision():
            st.warning(f"The database schema is at revision {revision}, this dashboard expects "
                       f"{head_revision()}: run `paysignal db upgrade`. Some panels may fail.")
        return has
    except (OperationalError, DBAPIError) as exc:
        dead_database(exc)
    raise AssertionError("unreachable")


def dead_database(exc: Exception) -> None:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
    st.error(f"**Database unavailable.** The figures below are missing until it is back. "
             f"({reason})", icon="🚨")
    st.stop()


def sidebar_filters() -> Filters:
    try:
        current = from_params(st.query_params.to_dict())
    except FilterError as exc:
        st.sidebar.warning(f"The link's filter `{exc.field}` was ignored: {exc.reason}")
        current = Filters.default()
    known = provider_names()
    if current.provider and current.provider not in known:
        st.sidebar.warning(f"The link's filter `provider` was ignored: {current.provider!r} is "
                           f"not a provider (known: {', '.join(sorted(known))})")
        current = replace(current, provider="")
    sb = st.sidebar
    sb.header("Filters")
    # Presets are plain options; the calendar (slower to draw) only for custom dates.
    options: list[int | None] = [*PRESET_DAYS, None]
    span = sb.selectbox("Days (UTC)", options, index=options.index(current.preset()),
                        format_func=lambda d: "custom dates…" if d is None
                        else ("today" if d == 1 else f"last {d} days"),
                        help="Through tomorrow: settlement days run ahead of payment days.",
                        key="filter_days")
    if span is None:
        picked = sb.date_input("From – to", value=(current.start, current.end))
        days = list(picked) if isinstance(picked, (tuple, list)) else [picked]
        start: date = days[0] if days else current.start
        end: date = days[-1] if days else current.end
    else:
        start, end = Filters.last(span).start, Filters.last(span).end
    providers = ["", *sorted(known)]
    provider = sb.selectbox("Provider", providers, index=providers.index(current.provider),
                            format_func=lambda p: p or "all providers", key="filter_provider")
    currency = sb.text_input("Currency", value=current.currency, placeholder="all, or e.g. EUR")
    merchant = sb.text_input("Merchant id", value=current.merchant, placeholder="all merchants")
    try:
        chosen = Filters(start, end, provider, currency.strip().upper(),
                         merchant.strip()).checked()
    except FilterError as exc:
        sb.error(f"{exc.field}: {exc.reason}")
        chosen = current
    params = {k: v for k, v in st.query_params.to_dict().items() if k not in
              ("from", "to", "provider", "currency", "merchant")}
    wanted = {**params, **chosen.to_params()}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
    if sb.button("Refresh now"):
        clear_cache()
    return chosen


def _accounts_exist(url: str) -> bool:
    """Whether named accounts exist; an unreachable or empty database has none (the page then
    says what is wrong with the database)."""
    try:
        return accounts.has_accounts(engine_for(url))
    except (OperationalError, DBAPIError):
        return False


def context() -> Context:
    ctx = st.session_state.get("ctx")
    if not isinstance(ctx, Context):
        raise RuntimeError("open the dashboard through dashboard/app.py")
    return ctx


def build_context() -> Context:
    write_url = database_url()
    login = auth.login_configured(_accounts_exist(write_url))
    check_bind(login)
    user = current_user(login, engine_for(write_url))
    read_url = os.environ.get(READ_URL_ENV) or write_url
    if login:
        st.sidebar.caption(f"Signed in as **{user.name}** "
                           f"({', '.join(sorted(r.value for r in user.roles))})")
        if user.via == "password" and st.sidebar.button("Log out"):
            st.session_state.pop("user", None)
            st.rerun()
        if user.via == "oidc":
            st.sidebar.button("Log out", on_click=st.logout)
    else:
        st.caption(f"🔒 No login configured: this dashboard listens on 127.0.0.1 only. "
                   f"You are the local user **{user.name}** "
                   f"({', '.join(sorted(r.value for r in user.roles)) or 'read only'}).")
    has = database_ready(read_url)
    filters = sidebar_filters()
    ctx = Context(user, login, filters, write_url, read_url,
                  dashboard_settings().dashboard_refresh_s, has)
    st.session_state["ctx"] = ctx
    return ctx


def run_write(action: Callable[[], T], done: str | Callable[[T], str]) -> T | None:
    """Run a write; show what happened (`done`, or `done(result)`) or, for refused or bad
    input, why (never a trace)."""
    try:
        result = action()
    except PaysignalError as exc:
        st.error(str(exc))
        return None
    except (OperationalError, DBAPIError) as exc:
        st.error(f"The database refused the change: {str(getattr(exc, 'orig', exc))[:300]}")
        return None
    clear_cache()
    st.success(done if isinstance(done, str) else done(result))
    return result


def now() -> datetime:
    return datetime.now(UTC)


def light_table(frame: Any) -> None:
    """A small table as Markdown: far cheaper for the browser to draw than st.dataframe's
    canvas grid, which the Overview would otherwise draw five times."""
    def cell(value: Any) -> str:
        text_value = "—" if value is None or value != value else str(value)
        return text_value.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    st.markdown("\n".join([header, rule, *rows]))
