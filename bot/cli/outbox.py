"""`modelbot outbox [retry ID]` and `modelbot deliver`: the outbox from the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, Parser, emit
from bot.domain import names
from bot.domain.entities import iso

if TYPE_CHECKING:
    from bot.services import Services


def add_commands(command: AddCommand, sub: Any) -> None:
    """`modelbot outbox [--failed|--all] [--json]`, `modelbot outbox retry ID`, `modelbot deliver`."""
    text = ("messages and webhooks not delivered yet, newest first, and destinations whose deliveries are paused "
            "(`outbox retry ID` resends a failed row)")
    p = sub.add_parser("outbox", help=text, description=text)
    p.set_defaults(func=cmd_outbox)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only rows that failed permanently")
    which.add_argument("--all", action="store_true", help="delivered rows too")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    actions = p.add_subparsers(dest="outbox_action", metavar="ACTION", parser_class=Parser)
    text = "send a failed row again (after fixing what made it fail)"
    r = actions.add_parser("retry", help=text, description=text)
    r.set_defaults(func=cmd_outbox_retry)
    r.add_argument("id", type=outbox_id, metavar="ID")
    text = ("deliver the outbox (Slack messages, webhooks) in the foreground until SIGTERM/SIGINT; "
            "needs SLACK_BOT_TOKEN, honours MODELBOT_SLACK_API_URL and MODELBOT_OUTBOX_*")
    d = sub.add_parser("deliver", help=text, description=text)
    d.set_defaults(func=cmd_deliver)
    d.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def cmd_outbox(services: Services, args: argparse.Namespace) -> None:
    from bot.delivery import admin
    from bot.domain.deliveries import paused_destinations

    rows = admin.list_rows(services.db, failed_only=args.failed, include_delivered=args.all, limit=args.limit)
    paused = paused_destinations(services.db)
    table = [[r.id, r.destination, r.kind, r.template, r.status, r.attempts, (r.last_error or "")[:80]] for r in rows]
    empty = "no failed rows" if args.failed else "nothing waiting: every row was delivered"

    def text() -> str:
        lines = [f"paused: {p.key} since {iso(p.since)}, {p.failures} failures, {p.waiting} waiting, next try "
                 f"{iso(p.next_try)} ({p.last_error})" for p in paused]
        lines.append(textfmt.table(["id", "destination", "kind", "template", "status", "attempts", "last error"],
                                   table) if table else empty)
        return "\n".join(lines)

    emit(args, {"rows": [r.to_dict() for r in rows], "paused": [p.to_dict() for p in paused]}, text)


def cmd_outbox_retry(services: Services, args: argparse.Namespace) -> None:
    from bot.delivery import admin

    row = admin.retry(services.db, args.id, now=services.clock())
    emit(args, row.to_dict(), lambda: f"outbox row {row.id} ({row.kind} {row.template}) is pending again; "
          "a running `modelbot deliver` or `modelbot serve` sends it at its next poll")


def cmd_deliver(services: Services, args: argparse.Namespace) -> None:
    """Foreground worker: SIGTERM/SIGINT let the round in flight finish, then exit 0."""
    import signal
    import threading

    from bot.cli.serving import configure_logging
    from bot.delivery import build_worker

    worker = build_worker(services)  # a missing token or a bad MODELBOT_OUTBOX_* stops here, in one line
    configure_logging(services.settings, args.log_level)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run_forever(stop)
    finally:
        worker.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def outbox_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 12:
        raise argparse.ArgumentTypeError(f"'{names.preview(raw, 20)}' is not an outbox row id: use a number "
                                         "from `modelbot outbox`")
    return int(raw)
