"""Request spans over OpenTelemetry (OTLP): one span per request, a child per recorded stage.

Only when an endpoint is configured: without one no provider or exporter is created, nothing
is imported from OpenTelemetry and nothing touches the network. Each app owns its provider
(none is installed globally), so the engine's own tracing and test apps never clash.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from config import Settings
from models.stages import StageClock

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter


def span_exporter(endpoint: str) -> SpanExporter:
    """OTLP over HTTP/protobuf to `endpoint` (the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")


class Tracing:
    """Turns a finished request's stage clock into spans, batched off the request's way."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("speech_gateway")

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing | None:
        if not settings.otel_endpoint:
            return None
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
        provider.add_span_processor(BatchSpanProcessor(span_exporter(settings.otel_endpoint)))
        return cls(provider)

    def export(self, name: str, attributes: dict[str, Any], clock: StageClock, end: float) -> None:
        """The request's span from `clock.started` to `end` (perf_counter times), with its stages."""
        from opentelemetry import trace

        to_ns = time.time_ns() - time.perf_counter_ns()  # perf_counter's scale to the epoch's

        def ns(t: float) -> int:
            return int(t * 1e9) + to_ns

        root = self.tracer.start_span(name, start_time=ns(clock.started), attributes=attributes)
        parent = trace.set_span_in_context(root)
        for interval in clock.intervals:
            if interval.name == "engine":
                continue  # each pass is its own child below, with its kind
            self.tracer.start_span(interval.name, parent, start_time=ns(interval.start)).end(ns(interval.end))
        for kind, interval in clock.passes:
            span = self.tracer.start_span("engine_pass", parent, start_time=ns(interval.start))
            span.set_attribute("speech_gateway.pass_kind", kind)
            span.end(ns(interval.end))
        root.end(ns(end))

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()
