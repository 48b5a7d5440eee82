"""`modelbot serve --workers N`: several HTTP processes on one port, under uvicorn's supervisor.

The parent binds the port once and starts N worker processes that share it (the kernel
spreads connections between them); it restarts a worker that dies and, on SIGTERM/SIGINT,
stops them all gracefully. Each worker is a whole `serve` process — Slack listeners, REST
API, outbox delivery worker, scheduler candidate — built in that process by `worker_app`.
Several processes are safe because the database decides: the scheduler runs on the one
replica holding the leader lock, outbox rows are claimed, pointer moves lock their rows.

This module is what a new worker unpickles before anything else, so it imports nothing
heavy: the worker answers the supervisor's health pings while it loads the app.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.services import Services

# A worker must answer the supervisor's ping within this, or it is killed and replaced. It
# answers as soon as it has unpickled its options (this light module), but on a crowded
# machine starting Python alone took seconds; uvicorn's default of 5 s killed workers in a loop.
HEALTHCHECK_TIMEOUT_S = 30
log = logging.getLogger("modelbot.serve")


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker needs from the parent's command line (the rest comes from the environment)."""

    slack: bool
    log_level: str


def worker_app(options: WorkerOptions) -> Any:
    """The app of one worker, with its own services, Slack app, delivery worker and scheduler
    candidate, stopped by uvicorn's lifespan shutdown. A failure here ends the worker with
    uvicorn's start-up failure code, so the parent stops instead of restarting it in a loop."""
    from uvicorn.config import STARTUP_FAILURE

    from bot.cli.serving import Background, configure_logging, web_app
    from bot.config.settings import Settings
    from bot.listeners.app import build_app
    from bot.services import open_services

    settings = Settings.from_env()
    configure_logging(settings, options.log_level)
    try:
        services = open_services(settings)
        bolt_app = build_app(services, "http") if options.slack else None
        background = Background(services, bolt_app, threading.Event())
    except Exception:
        log.exception("worker %s could not start", os.getpid())
        sys.exit(STARTUP_FAILURE)
    app = web_app(services, bolt_app, slack_off=not options.slack)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            background.stop()
            services.close()

    app.app.router.lifespan_context = lifespan  # the FastAPI app inside the fast path
    return app


def serve_workers(services: Services, mode: str, host: str, port: int, workers: int, options: WorkerOptions) -> None:
    """Block until SIGTERM/SIGINT; Unavailable when the port cannot be bound or a worker cannot start."""
    from bot.config.settings import ConfigError

    if mode != "http":
        raise ConfigError("--workers needs HTTP mode: add --http (Socket Mode runs one process).")
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from bot.cli.serving import API_ONLY_NOTE
    from bot.domain.errors import Unavailable
    from bot.web.server import SERVER_OPTIONS

    config = uvicorn.Config(functools.partial(worker_app, options), factory=True, host=host, port=port,
                            workers=workers, lifespan="on", timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
                            **SERVER_OPTIONS)
    try:
        sock = config.bind_socket()
    except SystemExit as exc:  # uvicorn has logged why (address in use, permission)
        raise Unavailable(f"could not serve HTTP on {host}:{port} (see the log line above)") from exc
    services.db.dispose()  # the parent only supervises; the workers open their own connections
    if not options.slack:
        log.warning(API_ONLY_NOTE)
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise Unavailable("a worker could not start (see the log lines above)")
