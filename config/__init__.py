"""Settings of speech-gateway: one class, read once at start-up and passed down."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
