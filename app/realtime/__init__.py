"""OpenAI's Realtime transcription sessions: client events in, turns to app/scheduling/, server events out."""
