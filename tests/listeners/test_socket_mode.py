"""Socket Mode end to end against a local websocket server speaking Slack's envelope protocol.

The flow Slack runs: `apps.connections.open` (app-level token) returns a websocket URL; the
server says `hello`; it pushes envelopes (`envelope_id`, `type`, `payload`); the app must
ack each `envelope_id` over the socket; the reply itself goes to the response_url. Here the
fake Slack answers `apps.connections.open` with the `ws://` URL of a `websockets` server in
this process, so every hop is real: our WebClient, slack_sdk's builtin Socket Mode client,
Bolt, our listeners, the database and the fake's response_url.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import requests
from websockets.sync.server import Server, ServerConnection, serve

from bot.cli.serving import make_socket_mode_handler
from bot.listeners.app import build_app
from bot.services import open_services
from tests.slack_fake import APP_ID, SlackFake
from tests.slack_support import (  # noqa: F401  (the *_fixture names register fixtures)
    REPO,
    SIGNING_SECRET,
    bot_settings,
    seed_registry,
    slack_fixture,
    stderr_lines,
    wait_for_line,
)


class SocketModeServer:
    """A stand-in for wss-primary.slack.com: greets with `hello`, pushes envelopes, records what comes back."""

    def __init__(self) -> None:
        self.connections: queue.Queue[ServerConnection] = queue.Queue()
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        # no compression or server pings: slack_sdk's builtin client negotiates no extensions
        self._server: Server = serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}&app_id={APP_ID}"

    def _handle(self, connection: ServerConnection) -> None:
        connection.send(json.dumps({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "applink-test", "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }))
        self.connections.put(connection)
        for message in connection:
            self.received.put(json.loads(message))

    def __enter__(self) -> SocketModeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join(10)


def slash_envelope(slack: SlackFake, text: str, response_name: str) -> dict[str, Any]:
    """A Socket Mode envelope around the same slash-command fields an HTTP POST would carry."""
    fields = dict(urllib.parse.parse_qsl(slack.slash_command_body(text, response_name=response_name).decode()))
    return {"envelope_id": str(uuid.uuid4()), "type": "slash_commands", "payload": fields,
            "accepts_response_payload": True}


def test_socket_mode_acks_the_envelope_over_the_socket_and_replies_at_the_response_url(
    database_url: str, slack: SlackFake
) -> None:
    services = open_services(bot_settings(database_url, slack))
    seed_registry(services.registry)
    app = build_app(services, "socket")
    handler = make_socket_mode_handler(app, services.settings)
    try:
        with SocketModeServer() as ws:
            slack.socket_mode_url = ws.url
            handler.connect()
            connection = ws.connections.get(timeout=10)

            # The builtin client asked *our* Web API base URL (not slack.com) with the app-level token.
            assert handler.client.web_client is app.client
            opened = slack.calls_to("apps.connections.open")
            assert len(opened) == 1 and opened[0].ok and opened[0].token == slack.app_token

            envelope = slash_envelope(slack, "show churn 2", "socket")
            connection.send(json.dumps(envelope))
            assert ws.received.get(timeout=10) == {"envelope_id": envelope["envelope_id"]}
            reply = slack.wait_for_responses("socket", 1, timeout=10)[0]
            assert reply.blocks is not None and reply.blocks[0]["text"]["text"] == "churn v2"
            assert reply.response_type == "ephemeral"

            # Requests are not signed in Socket Mode (the socket is authenticated instead).
            bad = slash_envelope(slack, "frobnicate", "socket-bad")
            connection.send(json.dumps(bad))
            assert ws.received.get(timeout=10) == {"envelope_id": bad["envelope_id"]}
            assert "Usage:" in slack.wait_for_responses("socket-bad", 1, timeout=10)[0].blocks[0]["text"]["text"]
    finally:
        handler.close()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()


def test_modelbot_serve_chooses_socket_mode_with_an_app_token_and_still_serves_probes(
    slack: SlackFake, tmp_path: Path
) -> None:
    """`modelbot serve` as a process: SLACK_APP_TOKEN set → Socket Mode, /healthz on --port, SIGTERM → exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
    env.update({"MODELBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}", "MODELBOT_SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token or "",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    with SocketModeServer() as ws:
        slack.socket_mode_url = ws.url
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", "0"], cwd=REPO, env=env,
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        seen: list[str] = []
        try:
            lines = stderr_lines(proc)
            url = wait_for_line(lines, r"listening on (http://\S+)", seen).group(1)
            wait_for_line(lines, r"connected to Slack in Socket Mode", seen)
            connection = ws.connections.get(timeout=10)
            assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok"}
            assert requests.get(url + "/api/v1/openapi.json", timeout=10).json()["openapi"].startswith("3.")
            assert requests.post(url + "/slack/events", timeout=10).status_code in (404, 405)  # no HTTP mode here

            envelope = slash_envelope(slack, "help", "served-socket")
            connection.send(json.dumps(envelope))
            assert ws.received.get(timeout=10) == {"envelope_id": envelope["envelope_id"]}
            assert slack.wait_for_responses("served-socket", 1, timeout=10)[0].blocks

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            wait_for_line(lines, r"modelbot stopped", seen)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = "".join(seen)
    assert slack.app_token not in log and slack.bot_token not in log and SIGNING_SECRET not in log
