"""OpenAI's Realtime API for transcription sessions: client events in, server events out."""
