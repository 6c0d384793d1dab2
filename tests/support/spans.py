"""An in-memory span exporter installed once per process, for tests."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.observability.tracing import configure_tracing

_exporter: InMemorySpanExporter | None = None


def span_exporter() -> InMemorySpanExporter:
    global _exporter
    if _exporter is None:
        _exporter = InMemorySpanExporter()
        configure_tracing(extra_processor=SimpleSpanProcessor(_exporter))
    _exporter.clear()
    return _exporter
