"""The /v1 REST API: one module per area, each a FastAPI router."""
