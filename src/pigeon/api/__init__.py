"""The HTTP APIs: one FastAPI application, one sub-package per dialect."""
