"""`speech-gateway` / `python -m app`: read the settings once and serve with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from app.main import create_app
from config import load_settings


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
