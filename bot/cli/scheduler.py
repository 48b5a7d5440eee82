"""`modelbot scheduler`: the leader-elected scheduler in the foreground, with outbox delivery.

Run it as its own deployment, or rely on `modelbot serve`, which runs the same thing in a
thread; any number of either may run against one database and exactly one of them leads.
Outbox delivery runs beside it when SLACK_BOT_TOKEN is set, so the digests this process
writes also reach Slack without a separate `modelbot deliver`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from bot.cli.common import AddCommand

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.scheduler")


def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("scheduler", cmd_scheduler,
                "run scheduled work (digests, source pulls, request expiry) when this process holds the "
                "leader lock, and deliver the outbox; until SIGTERM/SIGINT", json_flag=False)
    p.add_argument("--no-delivery", action="store_true",
                   help="do not deliver outbox rows from this process (another process runs `modelbot deliver`)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def cmd_scheduler(services: Services, args: argparse.Namespace) -> None:
    from bot.cli.serving import configure_logging
    from bot.jobs.runner import SchedulerRunner

    worker = None
    if not args.no_delivery and services.settings.slack_bot_token:
        from bot.delivery import build_worker

        worker = build_worker(services)  # a bad MODELBOT_OUTBOX_* stops here, in one line
    configure_logging(services.settings, args.log_level)
    if worker is None and not args.no_delivery:
        log.warning("SLACK_BOT_TOKEN is not set: digests are written to the outbox for another process to deliver")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    delivery: threading.Thread | None = None
    try:
        if worker is not None:
            delivery = threading.Thread(target=worker.run_forever, args=(stop,), name="modelbot-delivery", daemon=True)
            delivery.start()
        SchedulerRunner(services).run(stop)
    finally:
        stop.set()
        if delivery is not None:
            delivery.join(timeout=30)
        if worker is not None:
            worker.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
