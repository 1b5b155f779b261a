"""`speech-gateway` / `python -m app`: read the settings once and serve with uvicorn."""

from __future__ import annotations

import math
import sys
from typing import Any

import uvicorn

from app.main import create_app
from app.ops.logs import configure_logging
from config import Settings, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except ValueError as error:  # a bad setting or settings file: say which, without a traceback
        sys.exit(f"speech-gateway: invalid settings: {error}")
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **uvicorn_options(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the app, besides where (the family tests serve in-process with the same)."""
    return {
        "log_level": settings.log_level,
        # Our own access log carries the request id; uvicorn's would repeat it without.
        "access_log": False,
        "log_config": None,
        # On SIGTERM: stop accepting, let requests in flight finish, then stop the engine.
        "timeout_graceful_shutdown": math.ceil(settings.shutdown_grace_s),
        # uvicorn's own cap (16 MiB by default) must not undercut the realtime setting; the
        # session answers an oversized event itself, with an error event.
        "ws_max_size": max(16 * 1024 * 1024, 2 * math.ceil(settings.realtime_max_message_mb * 1024 * 1024)),
    }


if __name__ == "__main__":
    main()
