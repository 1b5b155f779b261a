"""API keys: `Authorization: Bearer <key>` on every /v1 route when keys are configured."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Request

from app.http.errors import APIError

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def key_matches(given: str, keys: Sequence[str]) -> bool:
    """Constant-time comparison against every key, so timing tells nothing about which is close."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8"))
    return found


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_key_guard(keys: Sequence[str]) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency refusing requests without one of `keys` (none: everything passes)."""
    configured = [k for k in keys if k]

    async def guard(request: Request) -> None:  # async: no thread-pool hop per request
        if not configured:
            return
        token = bearer_token(request)
        if token is None:
            raise APIError(
                401,
                "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
                "(Authorization: Bearer YOUR_KEY).",
                headers=CHALLENGE,
            )
        if not key_matches(token, configured):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key", headers=CHALLENGE)

    return guard
