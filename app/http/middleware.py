"""Per-request bookkeeping as plain ASGI: request id in and out, an access log line, metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ops.logs import new_request_id, request_id_var
from app.ops.metrics import Metrics
from app.ops.tracing import Tracing
from models import stages

log = logging.getLogger("speech_gateway.access")

# Client gone before the answer: nginx's convention, so dashboards can tell it from errors.
CLIENT_CLOSED = 499


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), or `other`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class RequestContext:
    """Wraps the app: sets the request id, times the request and its stages, logs, counts and traces it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, tracing: Tracing | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = new_request_id(headers.get("x-request-id"))
        token = request_id_var.set(request_id)
        status = CLIENT_CLOSED
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with stages.clocked() as clock:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._finish(scope, status, started, clock, request_id)
                request_id_var.reset(token)

    def _finish(self, scope: Scope, status: int, started: float, clock: stages.StageClock, request_id: str) -> None:
        """Count, log and trace the finished request."""
        ended = time.perf_counter()
        elapsed = ended - started
        route = route_label(scope)
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        # The sweep over the request's intervals, once for the metrics and the log line.
        exclusive = clock.exclusive(ended) if clock.intervals else {}
        self.metrics.observe_stages(clock, exclusive)
        fields: dict[str, Any] = {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round(elapsed * 1000, 1),
            "client": (scope.get("client") or ("", 0))[0],
            **stage_fields(clock, exclusive),
        }
        log.info("%s %s %s", scope.get("method"), scope.get("path"), status, extra=fields)
        if self.tracing is not None and clock.intervals:
            attributes = {k: v for k, v in fields.items() if isinstance(v, str | int | float)}
            attributes["request_id"] = request_id
            self.tracing.export(f"{scope.get('method')} {route}", attributes, clock, ended)


def stage_fields(clock: stages.StageClock, exclusive: dict[str, float]) -> dict[str, Any]:
    """The access log's view of a request's stages (`exclusive`: seconds per stage, from the clock):
    milliseconds per stage, engine passes by kind."""
    if not clock.intervals:
        return {}  # health checks, metrics, the page: nothing to tell
    return {
        "stages_ms": {name: round(s * 1000, 1) for name, s in exclusive.items()},
        "engine_passes": len(clock.passes),
        "passes": clock.pass_counts(),
    }
