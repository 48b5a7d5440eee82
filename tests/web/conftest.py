"""Fixtures of the serving tests (tests/client uses them too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.serving import web_app
from bot.web.server import ServerThread
from tests.web.serving_support import POLICY, Served, seed


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "modelbot.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def served(database_url: str, policy: Path) -> Iterator[Served]:
    """The API as `modelbot serve` serves it, in this process, on a free port."""
    services, reader, writer = seed(database_url, policy)
    server = ServerThread(web_app(services, None)).start()
    try:
        yield Served(services, server.url, reader, writer)
    finally:
        server.stop()
        services.close()
