"""Running the web app under uvicorn, in the main thread (HTTP mode) or a background thread.

Socket Mode still needs `/healthz` and `/metrics`, and tests need the real server on a free
port, so both use `ServerThread`; HTTP mode runs the same `WebServer` in the main thread,
where uvicorn handles SIGTERM/SIGINT with a graceful shutdown.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import uvicorn

log = logging.getLogger("modelbot.web")

GRACEFUL_SHUTDOWN_S = 10
# Production configuration: our logging (log_config=None), no per-request access log
# (Prometheus counts requests), a bounded graceful shutdown. `serve --workers` uses it too.
SERVER_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    "server_header": False,
}


class WebServer(uvicorn.Server):
    """uvicorn.Server that says when it is listening (and on which port, if asked for port 0).

    `ready` is set once startup has finished *or* failed, so a waiter never blocks on a
    server that died binding its port; `started` tells the two apart.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.port: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
            if self.started and self.servers:
                self.port = self.servers[0].sockets[0].getsockname()[1]
                log.info("modelbot web server listening on http://%s:%s", self.config.host, self.port)
        finally:
            self.ready.set()


def make_server(app: Any, host: str, port: int) -> WebServer:
    """One process serving `app` with SERVER_OPTIONS."""
    return WebServer(uvicorn.Config(app, host=host, port=port, lifespan="off", **SERVER_OPTIONS))


class ServerThread:
    """The web app served from a daemon thread; `start()` returns once it listens."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(app, host, port)
        self.host = host
        self._thread = threading.Thread(target=self._run, name="modelbot-web", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            # A fresh event loop in this thread; uvicorn skips signal handlers off the main thread.
            self.server.run()
        except BaseException as exc:  # SystemExit from a failed bind included
            self.error = exc
        finally:
            self.server.ready.set()

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        if not self.server.ready.wait(timeout) or not self.server.started:
            self.stop()
            raise RuntimeError(f"web server did not start on {self.host}: {self.error!r}")
        return self

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = GRACEFUL_SHUTDOWN_S + 5) -> None:
        """Graceful: stop accepting, finish in-flight requests, then return."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
