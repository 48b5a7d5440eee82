"""Fixtures for source tests: services on both database backends, a settable clock, and real
local HTTP servers (127.0.0.1, free port) whose answers each test scripts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.config.settings import Settings
from bot.domain.registry import NewVersion
from bot.services import Services, open_services

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The time the code under test sees; tests move it explicitly."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[Services]:
    """churn with v1 and v2 registered; production serves v2 (previous v1)."""
    settings = Settings(database_url=database_url, config_path=tmp_path / "absent.toml")
    svc = open_services(settings, clock=clock)
    for _ in range(2):
        svc.registry.register(NewVersion(model="churn", artifact_uri="s3://models/churn", actor="ci"))
    svc.registry.promote("churn", "1", "production", actor="alice")
    svc.registry.promote("churn", "2", "production", actor="alice")
    yield svc
    svc.close()


Reply = tuple[int, str, bytes]  # status, content type, body
Route = Callable[["Handler"], Reply]


@dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1; `routes` maps a path to a function producing the reply."""

    routes: dict[str, Route] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> the path a 302 sends to
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def json(self, path: str, body: str | bytes, status: int = 200) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = lambda _h: (status, "application/json", data)

    def stall(self, path: str) -> None:
        """Accept the request, then answer nothing until the test ends (a hung upstream)."""

        def hang(_h: Handler) -> Reply:
            self.release.wait(timeout=30)
            return 200, "application/json", b"{}"

        self.routes[path] = hang


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # http.server calls this name
        local = self.server.local
        path = self.path.split("?", 1)[0]
        local.requests.append(self.path)
        if path in local.redirects:
            self.send_response(302)
            self.send_header("Location", local.url + local.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route = local.routes.get(path)
        status, kind, body = route(self) if route else (404, "text/plain", b"no such route")
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    local: LocalServer


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    local = LocalServer()
    server = _Server(("127.0.0.1", 0), Handler)
    server.local = local
    local.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    yield local
    local.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
