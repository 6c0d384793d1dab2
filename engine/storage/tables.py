"""SQLAlchemy Core tables: the tables of record. The domain never imports this module."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

BigId = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY autoincrements in SQLite
TS = DateTime(timezone=True)

payments = Table(
    "payments", metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("reference", String(255), nullable=False),
    Column("capture_mode", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("captured_minor", BigInteger, nullable=False, server_default="0"),
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("fee_minor", BigInteger, nullable=False, server_default="0"),
    Column("provider_reference", String(128)),
    Column("pending_operation", String(16)),
    Column("pending_amount_minor", BigInteger, nullable=False, server_default="0"),
    Column("pending_request_id", String(128)),
    Column("decline_reason", String(255)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("method_type", String(16)),  # card, wallet, ... (engine.domain.method_types)
    # while the provider waits for the customer: what brings them back (JSON)
    Column("customer_action", Text),
    Index("ix_payments_state_updated", "state", "updated_at"),
    Index("ix_payments_provider_created", "provider", "created_at"),
    Index("ix_payments_merchant_reference", "merchant_id", "reference"),
    Index("ix_payments_provider_reference", "provider_reference"),
)

payment_transitions = Table(
    "payment_transitions", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("payment_id", String(64), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("trace_id", String(32)),
    Index("ix_payment_transitions_payment", "payment_id", "id"),
    Index("ix_payment_transitions_at", "at"),
)

journal_transactions = Table(
    "journal_transactions", metadata,
    Column("id", String(64), primary_key=True),
    Column("payment_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_journal_transactions_payment", "payment_id"),
    Index("ix_journal_transactions_kind_at", "kind", "at"),
)

journal_entries = Table(
    "journal_entries", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False),
    Column("account", String(128), nullable=False),
    Column("side", String(6), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Index("ix_journal_entries_transaction", "transaction_id"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("request_params", Text, nullable=False),
    Column("recovery_point", String(32), nullable=False),
    Column("locked_at", TS),
    Column("lock_token", String(32)),
    Column("payment_id", String(64)),
    Column("response_code", Integer),
    Column("response_body", Text),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("finished_at", TS),
    UniqueConstraint("merchant_id", "key", name="uq_idempotency_keys_merchant_key"),
    Index("ix_idempotency_keys_expires", "expires_at"),
    Index("ix_idempotency_keys_locked", "locked_at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("payment_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("published_at", TS),
    Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL"),
          sqlite_where=text("published_at IS NULL")),
)

event_log = Table(
    "event_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("payment_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("published_at", TS, nullable=False),
)

processed_events = Table(
    "processed_events", metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", TS, nullable=False),
)

provider_attempts = Table(
    "provider_attempts", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("payment_id", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("raw_status", String(64), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_provider_attempts_payment", "payment_id"),
    Index("ix_provider_attempts_at", "at"),
)

merchants = Table(
    "merchants", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

# A merchant's API keys (only their SHA-256 hashes). During a rotation the old key keeps working
# until expires_at; a revoked key stops at once.
merchant_keys = Table(
    "merchant_keys", metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), ForeignKey("merchants.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS),
    Column("revoked_at", TS),
)

# Every provider notification received, deduplicated by the provider's event id. Unmatched ones
# (no such payment) stay here for reconciliation.
webhook_events = Table(
    "webhook_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("payment_id", String(64)),
    Column("provider_reference", String(128)),
    Column("operation", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("result", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", TS, nullable=False),
    Column("sent_at", TS),  # the provider's signed timestamp: freshness = received - sent
    UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event"),
    Index("ix_webhook_events_result", "result", "received_at"),
)

# Operators allowed on the admin API, each with their own token (only its SHA-256 hash is kept).
admin_tokens = Table(
    "admin_tokens", metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
)

# Named dashboard accounts (scrypt password hashes) and failed logins (rate limiting).
dashboard_accounts = Table(
    "dashboard_accounts", metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("roles", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("disabled_at", TS),
)

dashboard_login_failures = Table(
    "dashboard_login_failures", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_dashboard_login_failures_name_at", "name", "at"),
)

# Refused notifications (bad signature, malformed) are counted, never stored one row each: a
# flood of forgeries costs one row per provider, minute and reason.
webhook_rejections = Table(
    "webhook_rejections", metadata,
    Column("provider", String(32), primary_key=True),
    Column("minute", TS, primary_key=True),
    Column("reason", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Staged rollout: idempotency enforcement per provider and payment method ('*' = any method).
# Idempotency enforcement per provider x method type ('*': any), optionally for one merchant
rollout_toggles = Table(
    "rollout_toggles", metadata,
    Column("provider", String(32), primary_key=True),
    Column("method_type", String(16), primary_key=True),
    Column("merchant_id", String(64), primary_key=True, server_default="*"),
    Column("mode", String(16), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

toggle_audit = Table(
    "toggle_audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    # the method type the toggle is keyed by (before migration 0028: a payment-method token)
    Column("payment_method", String(64), nullable=False),
    Column("merchant_id", String(64)),  # None: any merchant (every row before 0028)
    Column("from_mode", String(16), nullable=False),
    Column("to_mode", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("at", TS, nullable=False),
)

# Error-budget policy decisions per provider (append-only): notes for whoever changes a toggle.
budget_policy_notes = Table(
    "budget_policy_notes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("slo", String(63), nullable=False),
    Column("note", String(500), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_budget_policy_notes_provider", "provider", "id"),
)

# Provider settlement files, each imported once (by SHA-256), and their normalized lines.
settlement_files = Table(
    "settlement_files", metadata,
    Column("id", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("lines", Integer, nullable=False),
    Column("rejected_rows", Integer, nullable=False),
    Column("imported_at", TS, nullable=False),
    # lines already imported from an earlier (partial or re-sent) file: skipped, not doubled
    Column("duplicate_lines", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="imported"),  # or superseded
    Column("superseded_by", String(64)),
)

# Cardholders' disputes (chargebacks), one per provider dispute id; the payment's state and
# ledger move with them.
disputes = Table(
    "disputes", metadata,
    Column("id", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("dispute_ref", String(128), nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # open | won | lost
    Column("funds_withdrawn", Boolean, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("due_by", TS),
    Column("opened_at", TS, nullable=False),
    Column("closed_at", TS),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("provider", "dispute_ref", name="uq_disputes_reference"),
    Index("ix_disputes_payment", "payment_id"),
    Index("ix_disputes_opened", "provider", "opened_at"),
)

# A provider's payout to the bank, from its settlement report's payout line: its amount, the net
# of the lines it pays out, and the bank credit it arrived as.
payouts = Table(
    "payouts", metadata,
    Column("id", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("reference", String(128), nullable=False),  # po_…, "batch 42", a withdrawal id
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # sent to the bank (positive)
    Column("lines_net_minor", BigInteger, nullable=False),
    Column("line_count", Integer, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("bank_credit_id", String(64)),
    Column("arrived_on", Date),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("provider", "reference", "currency", name="uq_payouts_reference"),
    Index("ix_payouts_paid_on", "paid_on"),
)

# Bank statements (ISO 20022 camt.053, or a CSV export) and the credits they report.
bank_statements = Table(
    "bank_statements", metadata,
    Column("id", String(64), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("format", String(16), nullable=False),
    Column("account", String(64), nullable=False),
    Column("credits", Integer, nullable=False),
    Column("covers_to", Date, nullable=False),  # the last day the statement reports on
    Column("imported_at", TS, nullable=False),
)

bank_credits = Table(
    "bank_credits", metadata,
    Column("id", String(64), primary_key=True),
    Column("statement_id", String(64), nullable=False),
    Column("account", String(64), nullable=False),
    Column("entry_ref", String(128), nullable=False),  # the bank's own reference of the entry
    Column("booked_on", Date, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(500), nullable=False),  # remittance information
    Column("counterparty", String(255), nullable=False),
    Column("payout_id", String(64)),
    UniqueConstraint("account", "entry_ref", name="uq_bank_credits_entry"),
    Index("ix_bank_credits_booked", "currency", "booked_on"),
)

# What happened to a settlement file after its import (superseded by a corrected file).
settlement_file_audit = Table(
    "settlement_file_audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("file_id", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", String(1000), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_settlement_file_audit_file", "file_id", "id"),
)

settlement_lines = Table(
    "settlement_lines", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("file_id", String(64), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("line_id", String(255), nullable=False),  # the provider's own identity of the line
    Column("provider_reference", String(128), nullable=False),
    Column("payment_reference", String(255)),
    Column("kind", String(24), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("settled_on", Date, nullable=False),
    Column("net_minor", BigInteger, nullable=False, server_default="0"),
    Column("net_currency", String(3)),
    Column("payout_reference", String(128)),
    Index("ix_settlement_lines_reference", "provider", "provider_reference"),
    Index("ix_settlement_lines_day", "provider", "settled_on"),
    Index("uq_settlement_lines_line", "provider", "line_id", unique=True),
    Index("ix_settlement_lines_payout", "provider", "payout_reference"),
)

settlement_row_errors = Table(
    "settlement_row_errors", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("file_id", String(64), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("reason", String(255), nullable=False),
    Column("raw", Text, nullable=False),
)

# Reconciliation breaks: one per (provider, kind, provider reference, the settlement line or the
# expected ledger entry it is about); re-runs never duplicate one, distinct discrepancies on one
# reference never merge.
recon_breaks = Table(
    "recon_breaks", metadata,
    Column("id", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("settled_on", Date, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("provider_reference", String(128), nullable=False),
    Column("payment_id", String(64)),
    Column("currency", String(3)),  # the provider's (actual) currency
    Column("expected_currency", String(3)),  # ours; differs on a currency_mismatch
    Column("expected_minor", BigInteger),
    Column("actual_minor", BigInteger),
    Column("status", String(16), nullable=False),
    Column("owner", String(128)),
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("line_key", String(255), nullable=False, server_default=""),
    UniqueConstraint("provider", "kind", "provider_reference", "line_key",
                     name="uq_recon_breaks_identity"),
    Index("ix_recon_breaks_status", "status", "provider", "settled_on"),
)

recon_break_audit = Table(
    "recon_break_audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("break_id", String(64), nullable=False),
    Column("from_status", String(16), nullable=False),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", String(1000), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_recon_break_audit_break", "break_id", "id"),
)

recon_checkpoints = Table(
    "recon_checkpoints", metadata,
    Column("provider", String(32), primary_key=True),
    Column("settled_on", Date, primary_key=True),
    Column("matched_count", Integer, nullable=False),
    Column("break_count", Integer, nullable=False),
    Column("reconciled_at", TS, nullable=False),
    Column("signed_off_by", String(128)),
    Column("signed_off_at", TS),
    Column("sign_off_override", String(1000)),
)

# A checkpoint's amounts, one row per currency (amounts are never summed across currencies).
recon_checkpoint_amounts = Table(
    "recon_checkpoint_amounts", metadata,
    Column("provider", String(32), primary_key=True),
    Column("settled_on", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("matched_count", Integer, nullable=False),
    Column("matched_minor", BigInteger, nullable=False),
    Column("break_count", Integer, nullable=False),
    Column("break_minor", BigInteger, nullable=False),
)

# Every finance sign-off of a provider-day, append-only: a later one supersedes an earlier one,
# and both stay (the checkpoint row mirrors the latest).
recon_sign_offs = Table(
    "recon_sign_offs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("settled_on", Date, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", TS, nullable=False),
    Column("override", String(1000)),
    Column("open_breaks", Integer, nullable=False),
    Index("ix_recon_sign_offs_day", "provider", "settled_on", "id"),
)

# Scheduled job runs: a (job, slot) row is claimed before the run, so each run executes once
# across any number of workers; the row records how it went.
job_runs = Table(
    "job_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("slot", TS, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("status", String(16), nullable=False),
    Column("error", String(1000)),
    Column("result", Text),
    UniqueConstraint("job", "slot", name="uq_job_runs_job_slot"),
    Index("ix_job_runs_job_started", "job", "started_at"),
)

APPEND_ONLY_TABLES = ("payment_transitions", "journal_transactions", "journal_entries",
                      "toggle_audit", "recon_break_audit", "settlement_file_audit")


# SLO evaluation (slo/): per-minute good/total counts of each SLO, the source mark each SLO's
# rollup has read up to, and stored evaluation results.
sli_minutes = Table(
    "sli_minutes", metadata,
    Column("slo", String(128), primary_key=True),
    Column("minute", TS, primary_key=True),
    Column("good", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
)

sli_rollup_marks = Table(
    "sli_rollup_marks", metadata,
    Column("slo", String(128), primary_key=True),
    Column("mark", BigInteger, nullable=False),
    Column("updated_at", TS, nullable=False),
)

slo_evaluations = Table(
    "slo_evaluations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("slo", String(128), nullable=False),
    Column("at", TS, nullable=False),
    Column("evaluated_at", TS, nullable=False),
    Column("backend", String(32), nullable=False),
    Column("result", Text, nullable=False),
    Index("ix_slo_evaluations_slo_at", "slo", "at"),
)


# Alerts (alerts/): each alert's current state by fingerprint, notifications persisted before
# delivery (with their attempts), and silences.
alert_states = Table(
    "alert_states", metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("labels", Text, nullable=False),
    Column("status", String(16), nullable=False),  # firing | resolved
    Column("summary", String(1000), nullable=False),
    Column("details", Text, nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS),
    Column("last_seen_at", TS, nullable=False),
    Index("ix_alert_states_status", "status", "last_seen_at"),
)

# Every period an alert fired (alert_states holds only the latest per fingerprint): the
# dashboard draws them as bands on its time axes; ends_at is empty while it fires.
alert_firings = Table(
    "alert_firings", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("labels", Text, nullable=False),
    Column("summary", String(1000), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS),
    Index("ix_alert_firings_fingerprint", "fingerprint", "starts_at"),
    Index("ix_alert_firings_starts", "starts_at"),
)

# The alert-routing file each worker (or demo) loaded: the latest row is the routing in use.
alert_routing_in_use = Table(
    "alert_routing_in_use", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("path", String(1000), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("loaded_by", String(64), nullable=False),
    Column("at", TS, nullable=False),
)

alert_notifications = Table(
    "alert_notifications", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("receiver", String(128), nullable=False),
    Column("group_key", String(512), nullable=False),
    Column("dedup_key", String(128), nullable=False, unique=True),
    Column("payload", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", TS, nullable=False),
    Column("delivered_at", TS),
    Column("last_error", String(1000)),
    Index("ix_alert_notifications_pending", "delivered_at", "next_attempt_at"),
)

alert_silences = Table(
    "alert_silences", metadata,
    Column("id", String(64), primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("comment", String(1000), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("expired_by", String(128)),
)


# Retries the retry budget refused (rare; the detectors and the alert read them).
retry_refusals = Table(
    "retry_refusals", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_retry_refusals_at", "at"),
)


# Requests that met an existing Idempotency-Key (replayed, conflict, in_flight) and would-be
# duplicates shadow mode let through (shadow_replay, shadow_conflict). Rare; the dashboard's
# duplicate-risk panel reads them. New keys are not recorded here.
duplicate_risk_events = Table(
    "duplicate_risk_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("payment_id", String(64)),
    Column("at", TS, nullable=False),
    Index("ix_duplicate_risk_events_at", "at"),
)
