"""What the client gets: the transcript, its formats, the one streamed-transcription consumer; back via app/http/."""
