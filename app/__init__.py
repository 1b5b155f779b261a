"""speech-gateway's HTTP gateway: upload, decoding, chunking, prompts through the registry, the engine."""
