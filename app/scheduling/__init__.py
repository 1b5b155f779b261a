"""Pieces on the engine: admission, the pipeline, cancellation, the engine; readings go on to app/output/."""
