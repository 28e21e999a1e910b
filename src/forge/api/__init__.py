"""The HTTP API (FastAPI): routers per resource, key auth, problem+json errors."""
