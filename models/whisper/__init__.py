"""Whisper: the family (prompts, timestamped decoding, fallback) and the embedded checkpoints it ships."""

from models.whisper.family import WhisperModel

__all__ = ["WhisperModel"]
