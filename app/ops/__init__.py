"""Running the service, beside the request's way: metrics, logs with request ids, the container health check."""
