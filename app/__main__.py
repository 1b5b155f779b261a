"""`python -m app` serves the gateway."""

from app.cli import main

if __name__ == "__main__":
    main()
