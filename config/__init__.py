"""Settings of speech-gateway: one class, read once at start-up and passed down."""

from config.settings import Settings, engine_environment, export_engine_environment, load_settings

__all__ = ["Settings", "engine_environment", "export_engine_environment", "load_settings"]
