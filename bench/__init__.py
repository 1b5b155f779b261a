"""Benchmarks of speech-gateway against a named baseline measured in the same run."""
