"""`python -m app.ops.healthcheck`: exit 0 when the local server answers /health (for HEALTHCHECK)."""

from __future__ import annotations

import sys
import urllib.request

from config import load_settings


def main() -> int:
    settings = load_settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.port}/health", timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
