"""speech-gateway's HTTP gateway, in rooms along a request's way: http, audio, scheduling, output; realtime; ops."""
