"""HTTP routes: one module per endpoint family; each only parses, calls the pipeline, returns."""
