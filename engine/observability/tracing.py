"""OpenTelemetry tracing. Exporting follows the standard OTEL_* variables (OTLP over HTTP);
with none set, spans are still created (trace ids reach logs, exemplars and the audit trail)
but nothing is exported."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

tracer = trace.get_tracer("paysignal.engine")
_configured = False


def configure_tracing(service_name: str = "paysignal",
                      extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Install the SDK tracer provider once per process."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        if extra_processor:
            current.add_span_processor(extra_processor)
        return current
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    exporter_wanted = (os.environ.get("OTEL_TRACES_EXPORTER", "").lower() not in ("", "none")
                       or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                       or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if exporter_wanted:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def current_ids() -> tuple[str | None, str | None]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
