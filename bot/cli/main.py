"""`modelbot` command line: the interface CI/CD pipelines and operators script against.

Thin by design: parse arguments, call the domain, print. Each verb group lives in its own
module with an `add_commands(command, sub)`; this module assembles them, opens the services
and turns errors into one line and an exit code. Nothing is written unless the whole command
succeeds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bot.cli import (
    alerts,
    deploy,
    mlflow,
    monitoring,
    outbox,
    registry,
    scheduler,
    serve,
    shell,
    subscriptions,
    tokens,
)
from bot.cli.common import EXIT_BAD_INPUT, EXIT_FAILURE, Parser, Run
from bot.domain.errors import ModelbotError, Unavailable

PROCESS_UMASK = 0o077
# In the order of `modelbot --help`.
GROUPS = (registry, deploy, serve, shell, mlflow, tokens, outbox, monitoring, alerts, subscriptions, scheduler)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="modelbot", description="Model registry, approvals, rollouts and monitoring for Slack.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def command(name: str, func: Run, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON document (keys in the README)")
        return p

    for group in GROUPS:
        group.add_commands(command, sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # `--help` and usage errors end here, before the database layer is imported
    from bot.config.settings import ConfigError, Settings

    services = None
    try:
        from bot.services import open_services
        from storage.db import DatabaseBusy, DatabaseUnreachable

        settings = Settings.from_env()
        try:
            services = open_services(settings)
        except (DatabaseBusy, DatabaseUnreachable) as exc:
            raise Unavailable(str(exc)) from exc
        args.func(services, args)
        return 0
    except ConfigError as exc:
        print(f"modelbot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Unavailable as exc:
        print(f"modelbot: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ModelbotError as exc:
        print(f"modelbot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_FAILURE
    finally:
        if services is not None:
            services.close()


def run() -> None:
    """The `modelbot` program: files it creates (the SQLite database, its WAL and lock files,
    exports) are private to the user running it, whatever the shell's umask."""
    os.umask(PROCESS_UMASK)
    sys.exit(main())


if __name__ == "__main__":
    run()
