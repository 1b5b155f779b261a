"""Settings of speech-gateway: one class, read once at start-up and passed down."""

from config.environment import engine_environment
from config.models import ModelSpec
from config.settings import Settings, load_settings

__all__ = ["ModelSpec", "Settings", "engine_environment", "load_settings"]
