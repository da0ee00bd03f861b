"""The HTTP face of signoff: the /v1 REST API (and, later, the portal pages)."""
