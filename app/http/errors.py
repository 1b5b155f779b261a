"""The one API error type and the handlers that turn every failure into OpenAI's error envelope."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.scheduling.cancellation import ClientDisconnected
from models.interface import ModelInputError

log = logging.getLogger("speech_gateway.errors")


class APIError(Exception):
    """An error the client can act on: status, OpenAI `type`, the `param` to change, a `code`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


SHOWN_CHARS = 40  # how much of a client's value an error message quotes back


def shown(value: object) -> str:
    """A client's value quoted in a message: its start only, so a huge field is not echoed back."""
    text = value if isinstance(value, str) else str(value)
    return repr(text[:SHOWN_CHARS]) + ("..." if len(text) > SHOWN_CHARS else "")


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def model_not_found(name: str) -> APIError:
    return APIError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def timed_out(seconds: float) -> APIError:
    return APIError(
        504,
        f"the request took longer than the server's limit of {seconds:.0f} s; send shorter audio",
        type="server_error",
        code="timeout",
    )


def refused(error: ModelInputError) -> APIError:
    """What the family cannot do, as a 400 naming the field to change."""
    return bad_request(str(error), error.param, error.code)


def internal_error() -> APIError:
    """A server fault, told without internals."""
    return APIError(500, "the server failed to process the request", type="server_error", code="internal_error")


def too_large(limit_bytes: int) -> APIError:
    return APIError(
        413,
        f"the upload exceeds the limit of {limit_bytes // (1024 * 1024)} MB; send a shorter or compressed file",
        code="request_too_large",
    )


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


_STATUS_TYPES = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def _from_http_exception(exc: StarletteHTTPException) -> APIError:
    kind, code = _STATUS_TYPES.get(exc.status_code, ("invalid_request_error", None))
    if exc.status_code >= 500:
        kind = "server_error"
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return APIError(exc.status_code, message, type=kind, code=code, headers=dict(exc.headers or {}))


def _from_validation_error(exc: RequestValidationError) -> APIError:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "form")]
    param = ".".join(location) or None
    return bad_request(f"invalid value for {param or 'the request'}: {first.get('msg', 'invalid')}", param)


def install_error_handlers(app: FastAPI) -> None:
    """Every exception becomes `{"error": {...}}`; no stack trace leaves the server."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return error_response(exc)

    async def on_model_input(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ModelInputError)
        return error_response(refused(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(_from_http_exception(exc))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(_from_validation_error(exc))

    async def on_disconnect(_: Request, exc: Exception) -> Response:
        # Nobody is listening; the status only tells the access log and metrics what happened.
        return Response(status_code=499)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(internal_error())

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(ModelInputError, on_model_input)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ClientDisconnected, on_disconnect)
    app.add_exception_handler(Exception, on_unexpected)
