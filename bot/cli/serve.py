"""`modelbot serve`: the verb; the server itself is `bot.cli.serving`, imported only when it runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import AddCommand, port
from bot.domain import names

if TYPE_CHECKING:
    from bot.services import Services


def cmd_serve(services: Services, args: argparse.Namespace) -> None:
    from bot.cli.serving import choose_mode, configure_logging, serve, slack_configured
    from bot.listeners.app import require_slack_settings

    mode = choose_mode(services.settings, http=args.http, socket=args.socket)
    slack = slack_configured(services.settings, mode)
    if slack:
        require_slack_settings(services, mode)  # one line naming the variable, before logging is set up
    configure_logging(services.settings, args.log_level)
    if args.workers > 1:
        from bot.cli.workers import WorkerOptions, serve_workers

        serve_workers(services, mode, args.host, args.port, args.workers, WorkerOptions(slack, args.log_level))
    else:
        serve(services, mode=mode, host=args.host, port=args.port)


def workers(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise argparse.ArgumentTypeError(f"'{names.preview(raw, 20)}' is not a number of workers (1–64)")
    return int(raw)


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("serve", cmd_serve, "run the Slack app and the REST API: Socket Mode when SLACK_APP_TOKEN is set, "
                "else HTTP mode (the REST API alone when no Slack setting is set)", json_flag=False)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--http", action="store_true",
                      help="serve POST /slack/events (needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET; without "
                      "either, it answers 503 and only the REST API serves), /api/v1, /healthz and /metrics")
    mode.add_argument("--socket", action="store_true",
                      help="connect over Socket Mode (needs SLACK_APP_TOKEN); /healthz and /metrics on --port")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=3000, help="TCP port (default 3000)")
    p.add_argument("--workers", type=workers, default=1,
                   help="HTTP mode: processes sharing the port (default 1; about one per core, see the README)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
