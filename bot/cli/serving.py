"""`modelbot serve`: run the Slack app in HTTP mode or Socket Mode, with logging that is safe to ship.

HTTP mode serves `/slack/events`, `/healthz` and `/metrics` from uvicorn (Bolt's own
`App.start()` is a development server). Socket Mode needs no public URL; it still serves
`/healthz` and `/metrics` on `--port` so the same probes and scrapes work in both modes.
SIGTERM (what Kubernetes and systemd send) stops accepting work, lets requests in flight
finish and waits for listeners that are still replying, then exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.config.settings import Settings
from bot.domain.errors import Unavailable
from bot.listeners.app import Mode, build_app
from bot.redaction import redact_text
from bot.web.app import SLACK_EVENTS_PATH, create_web_app
from bot.web.server import ServerThread, make_server

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.serve")

API_PREFIX = "/api/v1"


# ---- logging --------------------------------------------------------------------------------


class SafeOneLineFormatter(logging.Formatter):
    """One line per record (newlines escaped, tracebacks included) with secrets removed.

    Redaction runs on the *formatted* line, so it also catches secrets that libraries put
    into messages or arguments (slack_sdk logs request headers, Authorization included, at
    DEBUG), not only the ones our code might log by mistake.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record), self._secrets).replace("\r", "\\r").replace("\n", "\\n")


def configure_logging(settings: Settings, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Root logger → stderr through `SafeOneLineFormatter`; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(SafeOneLineFormatter(
        [settings.slack_bot_token, settings.slack_app_token, settings.slack_signing_secret]
    ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


# ---- choosing and running a mode --------------------------------------------------------------


def choose_mode(settings: Settings, *, http: bool = False, socket: bool = False) -> Mode:
    """`--http`/`--socket` win; otherwise Socket Mode exactly when an app-level token is configured."""
    if http:
        return "http"
    if socket:
        return "socket"
    return "socket" if settings.slack_app_token else "http"


def make_socket_mode_handler(app: App, settings: Settings) -> SocketModeHandler:
    """The builtin (dependency-free) Socket Mode client, reaching Slack through *our* WebClient.

    Passing `web_client=app.client` makes `apps.connections.open` honour MODELBOT_SLACK_API_URL
    (proxies, GovSlack, the test fake) and reuse its retry handlers. The builtin client
    speaks TLS only on port 443, so the `ws://127.0.0.1:PORT` URL of a local test server works.
    """
    assert settings.slack_app_token is not None  # build_app(mode="socket") checked it
    return SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client, logger=app.logger)


def slack_configured(settings: Settings, mode: Mode) -> bool:
    """HTTP mode with no Slack setting at all serves the REST API alone (a pipeline needs no
    Slack app); a partial Slack configuration, or Socket Mode, needs every setting."""
    return mode == "socket" or bool(settings.slack_bot_token or settings.slack_signing_secret)


def serve(services: Services, *, mode: Mode, host: str = "127.0.0.1", port: int = 3000) -> None:
    """One process; blocks until SIGTERM/SIGINT. Missing Slack settings raise ConfigError
    before anything starts. (`serve --workers N`: bot.cli.workers.)"""
    bolt_app = build_app(services, mode) if slack_configured(services.settings, mode) else None
    if bolt_app is None:
        log.warning(API_ONLY_NOTE)
    stop = threading.Event()
    previous = _install_stop_handlers(stop)
    background = Background(services, bolt_app, stop)
    try:
        if mode == "http":
            _serve_http(services, bolt_app, host, port)
        else:
            assert bolt_app is not None
            _serve_socket(services, bolt_app, host, port, stop)
    finally:
        background.stop()  # in HTTP mode uvicorn handles the signals itself and may never set `stop`
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("modelbot stopped")


API_ONLY_NOTE = ("no Slack settings (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET): serving the REST API only; "
                 "POST /slack/events answers 503, and messages for Slack wait in the outbox")


class Background:
    """What runs beside the web server: the outbox delivery worker (the only path by which
    state changes reach Slack and webhooks; it needs the bot token) and the leader-elected
    scheduler (MODELBOT_SCHEDULER=off: none)."""

    def __init__(self, services: Services, bolt_app: App | None, stop: threading.Event) -> None:
        from bot.delivery import start_delivery
        from bot.jobs.runner import start_background

        self.bolt_app, self.stop_event = bolt_app, stop
        deliver = services.settings.delivery and bool(services.settings.slack_bot_token)
        self.delivery = start_delivery(services, stop) if deliver else None
        self.scheduler = start_background(services)

    def stop(self) -> None:
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.delivery is not None:
            self.delivery.join(timeout=15)
        if self.bolt_app is not None:
            _drain_listeners(self.bolt_app)


def _install_stop_handlers(stop: threading.Event) -> dict[signal.Signals, Any]:
    """Our handlers first: uvicorn re-raises the signal after its graceful shutdown, and with the
    default SIGTERM action that would kill the process before listeners have replied."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def web_app(services: Services, bolt_app: App | None, *, slack_off: bool = False) -> Any:
    """Everything served over HTTP in either mode: Slack (HTTP mode only), probes, the REST API,
    MLflow's webhooks, with cached serving-state reads answered in front of it all
    (`ServingFastPath`). `slack_off`: HTTP mode without Slack settings, where POST /slack/events
    says so (503)."""
    from bot.web import mlflow_webhook
    from bot.web.api.app import create_api_app
    from bot.web.api.fast_path import ServingFastPath

    api = create_api_app(services)
    routers = [mlflow_webhook.router(services)] + ([slack_not_configured()] if slack_off else [])
    web = create_web_app(services, bolt_app, routers=routers, mounts={API_PREFIX: api})
    return ServingFastPath(web, api.state.context, api.state.serving, API_PREFIX)


def slack_not_configured() -> APIRouter:
    router = APIRouter()

    @router.post(SLACK_EVENTS_PATH, include_in_schema=False)
    def slack_events() -> JSONResponse:
        return JSONResponse({"error": {"code": "slack_not_configured", "message": SLACK_OFF_MESSAGE}},
                            status_code=503)

    return router


SLACK_OFF_MESSAGE = ("Slack is not configured on this server: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and "
                     "restart it. The REST API under /api/v1 works without them.")


def _serve_http(services: Services, bolt_app: App | None, host: str, port: int) -> None:
    server = make_server(web_app(services, bolt_app, slack_off=bolt_app is None), host, port)
    log.info("starting HTTP mode: POST /slack/events, GET /healthz, GET /metrics, /api/v1")
    try:
        server.run()  # uvicorn handles SIGTERM/SIGINT itself: stop accepting, finish requests
    except SystemExit as exc:  # uvicorn exits when it cannot bind; it has logged why
        raise Unavailable(f"could not serve HTTP on {host}:{port} (see the log line above)") from exc
    if not server.started:
        raise Unavailable(f"could not serve HTTP on {host}:{port} (see the log line above)")


def _serve_socket(services: Services, bolt_app: App, host: str, port: int, stop: threading.Event) -> None:
    try:
        probes = ServerThread(web_app(services, None), host, port).start()
    except RuntimeError as exc:
        raise Unavailable(f"could not serve /healthz and /metrics on {host}:{port}") from exc
    handler = make_socket_mode_handler(bolt_app, services.settings)
    try:
        try:
            handler.connect()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else exc
            raise Unavailable(f"Slack refused the Socket Mode connection ({error}): check SLACK_APP_TOKEN.") from exc
        log.info("connected to Slack in Socket Mode; /healthz, /metrics and /api/v1 on %s", probes.url)
        stop.wait()
    finally:
        handler.close()
        probes.stop()


def _drain_listeners(bolt_app: App) -> None:
    """Wait for listeners still replying to requests that were already acknowledged."""
    bolt_app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
