"""The REST API under /api/v1 for CI/CD and serving layers."""
