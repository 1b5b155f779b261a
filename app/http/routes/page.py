"""The page at `/` for trying the service in a browser: plain files from `app/static`, no API key needed."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.http.errors import APIError

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"  # app/static, beside the rooms

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Everything the page loads comes from this server; the API and the Realtime socket are same-origin.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}

router = APIRouter(include_in_schema=False)


def _asset(name: str) -> FileResponse:
    """One of the shipped files, by its plain name; anything else (paths, unknown names) is a 404."""
    path = STATIC_DIR / name
    media_type = _MEDIA_TYPES.get(path.suffix)
    if "/" in name or "\\" in name or name.startswith(".") or media_type is None or not path.is_file():
        raise APIError(404, f"no such file: {name}", code="not_found")
    return FileResponse(path, media_type=media_type, headers=_HEADERS)


@router.get("/")
async def index() -> FileResponse:
    return _asset("index.html")


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    return _asset(name)
