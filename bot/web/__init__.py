"""The HTTP server: `/slack/events` (Bolt), `/healthz`, `/metrics`, and later `/api/v1`."""
