"""Signals at the source: the metric catalogue, Prometheus metrics, OpenTelemetry traces, JSON
logs, and the observer hooks the engine calls."""
