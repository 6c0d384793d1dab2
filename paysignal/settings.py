"""Every number and choice paysignal's processes take from the environment, in one object,
read and checked when a process starts: a bad value stops it with an error naming the variable.

The layers below the wiring declare their own sections (the database's, settlement's, the
outbox's, the dashboard's) and read them through the same function (`engine.environment`);
`Settings` is all of them plus the wiring's own. Pydantic models with the variables' names as
aliases, rather than pydantic-settings: the same checks must run on any mapping (a child
process's environment, a simulation's, a test's), not only on os.environ, and an empty variable
means "unset" as a shell user expects."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from dashboard.settings import DashboardSettings
from engine.environment import read_settings
from engine.outbox.relay import OutboxSettings
from engine.settlement.settings import SettlementSettings
from engine.storage.db import DatabaseSettings

_Seconds = Annotated[float, Field(gt=0, le=7 * 86_400)]  # up to a week
_Minutes = Annotated[float, Field(gt=0, le=7 * 24 * 60)]


class Settings(DatabaseSettings, SettlementSettings, OutboxSettings, DashboardSettings):
    """Defaults are production's. Field aliases are the environment variables; descriptions
    are the docs' configuration table (docs/configuration.md, generated)."""

    idempotency_lock_timeout_s: _Seconds = Field(
        60.0, alias="PAYSIGNAL_IDEMPOTENCY_LOCK_TIMEOUT_S",
        description="after this, a request's lock on its key counts as abandoned and may be "
                    "taken over")
    idempotency_key_ttl_s: _Seconds = Field(
        24 * 3600.0, alias="PAYSIGNAL_IDEMPOTENCY_KEY_TTL_S",
        description="how long a finished key replays its response; `paysignal keys expire` "
                    "removes older ones")
    retry_max_attempts: int = Field(
        4, ge=1, le=20, alias="PAYSIGNAL_RETRY_MAX_ATTEMPTS",
        description="attempts of a provider call that surely did not reach the provider "
                    "(refused connection, a 429 or a retryable 5xx)")
    retry_deadline_s: _Seconds = Field(
        10.0, alias="PAYSIGNAL_RETRY_DEADLINE_S",
        description="no retry starts later than this after the first attempt")
    retry_initial_backoff_s: _Seconds = Field(
        0.05, alias="PAYSIGNAL_RETRY_INITIAL_BACKOFF_S",
        description="ceiling of the first wait; each next ceiling doubles, and the wait is "
                    "drawn from 0 to the ceiling with the operating system's entropy (full "
                    "jitter: no two processes retry in step)")
    retry_max_backoff_s: _Seconds = Field(
        2.0, alias="PAYSIGNAL_RETRY_MAX_BACKOFF_S",
        description="the ceilings' ceiling (at least the initial backoff); a provider's "
                    "Retry-After is honoured when longer")
    retry_budget_ratio: float = Field(
        0.2, ge=0, le=1, alias="PAYSIGNAL_RETRY_BUDGET_RATIO",
        description="retries a process may make as a share of its provider calls in the "
                    "window; past it, retries are refused and `RetryBudgetExhausted` fires")
    retry_budget_min_retries: int = Field(
        10, ge=0, le=1_000_000, alias="PAYSIGNAL_RETRY_BUDGET_MIN_RETRIES",
        description="retries always allowed in the window, whatever the share")
    retry_budget_window_s: _Seconds = Field(
        60.0, alias="PAYSIGNAL_RETRY_BUDGET_WINDOW_S",
        description="the retry budget's sliding window")
    api_concurrency: int = Field(
        16, ge=1, le=256, alias="PAYSIGNAL_API_CONCURRENCY",
        description="requests one `serve api` process works on at once (its worker threads); "
                    "its database pool holds as many connections, so a busy API never opens "
                    "connections beyond the pool. A thread waits through each provider call: "
                    "size it near the rate one process must serve × (the provider's latency + "
                    "10 ms)")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=64 * 1024 * 1024, alias="PAYSIGNAL_MAX_BODY_BYTES",
        description="larger request bodies get 413")
    customer_action_timeout_s: _Seconds = Field(
        3600.0, alias="PAYSIGNAL_CUSTOMER_ACTION_TIMEOUT_S",
        description="how long a payment waits for its customer (3-D Secure, a redirect, a "
                    "payer's approval) before the worker cancels it at the provider and "
                    "declines it (`customer_action_expired`)")
    webhook_tolerance_s: _Seconds = Field(
        300.0, alias="PAYSIGNAL_WEBHOOK_TOLERANCE_S",
        description="replay window: notifications signed longer ago (or ahead) are refused")
    webhook_rejections_per_minute: int = Field(
        60, ge=1, le=1_000_000, alias="PAYSIGNAL_WEBHOOK_REJECTIONS_PER_MINUTE",
        description="refused notifications (bad signature, malformed) a provider may send per "
                    "minute before the rest get 429 without being verified")
    table_gauges_ttl_s: float = Field(
        15.0, ge=0, le=3600, alias="PAYSIGNAL_TABLE_GAUGES_TTL_S",
        description="table gauges (unknown outcomes, outbox, ledger, reconciliation) are read "
                    "from the database at most this often, however often anyone scrapes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="PAYSIGNAL_LOG_LEVEL",
        description="level of the JSON logs of `serve api` and `serve worker`")
    worker_interval_scale: float = Field(
        1.0, gt=0, le=100, alias="PAYSIGNAL_WORKER_INTERVAL_SCALE",
        description="multiplies every job interval (relay 2 s, resolver and recovery 30 s, "
                    "customer-action expiry 1 min, SLO "
                    "and alert evaluation 1 min, key expiry 1 h, reconciliation 10 min)")
    settlement_dir: Path | None = Field(
        None, alias="PAYSIGNAL_SETTLEMENT_DIR",
        description="the worker imports and reconciles the providers' settlement reports and "
                    "bank statements in this directory every 10 minutes; files of unknown name "
                    "go to `quarantine/`")
    sli_backend: Literal["database", "prometheus"] = Field(
        "database", alias="PAYSIGNAL_SLI_BACKEND",
        description="where the worker's SLO job (and `paysignal slo evaluate`) reads SLIs")
    prometheus_url: str | None = Field(
        None, alias="PAYSIGNAL_PROMETHEUS_URL",
        description="Prometheus base URL, required by the `prometheus` SLI backend")
    alert_routes: Path | None = Field(
        None, alias="PAYSIGNAL_ALERT_ROUTES",
        description="alert routing file (unset: `alerts/routing.yaml`)")
    alert_unknown_after_min: _Minutes = Field(
        15, alias="PAYSIGNAL_ALERT_UNKNOWN_AFTER_MIN",
        description="minutes before stale unknown outcomes raise an alert")
    alert_confirmation_after_min: _Minutes = Field(
        30, alias="PAYSIGNAL_ALERT_CONFIRMATION_AFTER_MIN",
        description="minutes a payment may await a provider's confirmation before an alert")
    alert_customer_action_after_min: _Minutes = Field(
        75, alias="PAYSIGNAL_ALERT_CUSTOMER_ACTION_AFTER_MIN",
        description="minutes a payment may wait for its customer before "
                    "`CustomerActionsStuck` fires (the expiry timeout and a grace for the "
                    "worker to cancel it at the provider)")
    alert_outbox_after_min: _Minutes = Field(
        5, alias="PAYSIGNAL_ALERT_OUTBOX_AFTER_MIN",
        description="minutes before an outbox backlog raises an alert")
    alert_break_amount_minor: int = Field(
        100_000, ge=0, alias="PAYSIGNAL_ALERT_BREAK_AMOUNT_MINOR",
        description="open break amount (minor units, per currency) that raises "
                    "`ReconciliationBreaksAged`")
    alert_bad_signatures: int = Field(
        5, ge=1, alias="PAYSIGNAL_ALERT_BAD_SIGNATURES",
        description="bad signatures per provider in 15 min that raise "
                    "`WebhookSignatureFailures`")
    alert_dispute_rate_pct: float = Field(
        0.65, gt=0, le=100, alias="PAYSIGNAL_ALERT_DISPUTE_RATE_PCT",
        description="a provider-month's dispute ratio (%) that raises `DisputeRateHigh` "
                    "(Visa's early warning; see the README for the sources)")
    alert_dispute_min_count: int = Field(
        75, ge=1, alias="PAYSIGNAL_ALERT_DISPUTE_MIN_COUNT",
        description="disputes a provider-month must also count to raise `DisputeRateHigh`")

    @model_validator(mode="after")
    def _prometheus_backend_needs_its_url(self) -> Settings:
        if self.sli_backend == "prometheus" and not self.prometheus_url:
            raise ValueError("PAYSIGNAL_PROMETHEUS_URL: required when "
                             "PAYSIGNAL_SLI_BACKEND=prometheus")
        return self

    @model_validator(mode="after")
    def _backoff_within_its_ceiling(self) -> Settings:
        if self.retry_max_backoff_s < self.retry_initial_backoff_s:
            raise ValueError("PAYSIGNAL_RETRY_MAX_BACKOFF_S must be at least "
                             "PAYSIGNAL_RETRY_INITIAL_BACKOFF_S")
        return self


def settings_markdown() -> str:
    """The table of every setting, for docs/configuration.md."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in sorted(Settings.model_fields.values(), key=lambda f: str(f.alias)):
        default = f.default if not isinstance(f.default, float) else f"{f.default:g}"
        rows.append(f"| `{f.alias}` | `{default}` | {f.description} |")
    return "\n".join(rows)


def variables() -> list[str]:
    """Every variable Settings reads, sorted (the docs' configuration table lists them)."""
    return Settings.variables()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: this process's environment). Raises ConfigurationError
    naming every bad variable, its value and what it must be."""
    return read_settings(Settings, env)
