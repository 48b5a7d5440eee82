"""The serving fixtures of tests/web (a seeded registry served in this process)."""

from tests.web.conftest import policy, served

__all__ = ["policy", "served"]
