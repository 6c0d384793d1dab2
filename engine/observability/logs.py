"""JSON logs that carry the trace context and never an API key, secret or card number."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from engine.observability.tracing import current_ids

# Only these extra fields reach the log line: nothing a caller passes by accident.
CONTEXT_FIELDS = ("payment_id", "merchant_id", "provider", "operation", "from_state", "to_state",
                  "route", "method", "status", "duration_ms", "outcome")
_SECRETS = [
    (re.compile(r"psk_[A-Za-z0-9_\-]+"), "psk_[redacted]"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[redacted-pan]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


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
    return handler
