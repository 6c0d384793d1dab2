"""JSON logs that carry the trace context and never an API key, secret or card number."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from engine.observability.tracing import current_ids

SECRET_VARIABLE_PREFIX = "PAYSIGNAL_WEBHOOK_SECRET_"

# Only these extra fields reach the log line: nothing a caller passes by accident.
CONTEXT_FIELDS = ("payment_id", "merchant_id", "provider", "operation", "from_state", "to_state",
                  "route", "method", "status", "duration_ms", "outcome")
_SECRETS = [
    (re.compile(r"psk_[A-Za-z0-9_\-]+"), "psk_[redacted]"),  # merchant API keys
    (re.compile(r"pat_[A-Za-z0-9_\-]+"), "pat_[redacted]"),  # admin tokens
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"(?i)basic\s+[A-Za-z0-9+/=]{8,}"), "Basic [redacted]"),
    (re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]+"), "sk_[redacted]"),  # Stripe keys
    (re.compile(r"\bwhsec_[A-Za-z0-9_]+"), "whsec_[redacted]"),  # Stripe endpoint secrets
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[redacted-pan]"),
    # a password inside a URL (database, SMTP, Kafka): scheme://user:PASSWORD@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.I), r"\1[redacted]@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    for secret in _configured_secrets():
        text = text.replace(secret, "[redacted-secret]")
    return text


def _configured_secrets() -> list[str]:
    """The secrets this process holds — webhook secrets (PAYSIGNAL_WEBHOOK_SECRET_*) and each
    provider's credentials (engine.providers.registry.SECRET_VARIABLES): never logged."""
    from engine.providers.registry import SECRET_VARIABLES

    return [s.strip() for name, value in os.environ.items()
            if name.startswith(SECRET_VARIABLE_PREFIX) or name in SECRET_VARIABLES
            for s in value.split(",") if len(s.strip()) >= 8]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_ids()
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if trace_id:
            line.update(trace_id=trace_id, span_id=span_id)
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = redact(str(value)) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = redact(record.exc_info[0].__name__)
        return json.dumps(line)


def configure_logging(level: str = "INFO", stream: TextIO = sys.stderr) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every provider request's URL at INFO: the engine's own log line per payment
    # says what happened, without provider object ids
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
