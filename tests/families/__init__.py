"""Tiny random-weight checkpoints of audio LLM families, and their Hugging Face reference side."""
