"""The HTTP edge: routes, upload and form parsing, OpenAI's shapes, auth, errors; the audio goes on to app/audio/."""
