"""Per-request bookkeeping as plain ASGI: request id in and out, an access log line, metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ops.logs import new_request_id, request_id_var
from app.ops.metrics import Metrics

log = logging.getLogger("speech_gateway.access")

# Client gone before the answer: nginx's convention, so dashboards can tell it from errors.
CLIENT_CLOSED = 499


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), or `other`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class RequestContext:
    """Wraps the app: sets the request id, times the request, logs and counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

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

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            fields: dict[str, Any] = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
                "client": (scope.get("client") or ("", 0))[0],
            }
            log.info("%s %s %s", scope.get("method"), scope.get("path"), status, extra=fields)
            request_id_var.reset(token)
