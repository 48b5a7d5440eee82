"""`modelbot` command line: the interface CI/CD pipelines and operators script against.

Thin by design: parse arguments, call the domain, print. Bad input prints one line on
stderr and exits 2; failures of the environment (database locked or unreachable) exit 1.
Nothing is written unless the whole command succeeds.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from bot import textfmt
from bot.config import ConfigError, Settings
from bot.domain import names
from bot.domain.errors import Conflict, InvalidInput, ModelbotError, Unavailable

if TYPE_CHECKING:
    from bot.runtime import Services

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus a message; we want one line that says what to type."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values or ():
        name, sep, value = raw.partition("=")
        if not sep:
            raise InvalidInput(
                f"--{what} '{names.preview(raw)}' has no '=': write --{what} NAME=VALUE, for example --{what} auc=0.91."
            )
        names.key(name, what)
        if name in out:
            raise InvalidInput(f"--{what} {name} is given twice: give each {what} once.")
        out[name] = value
    return out


def _default_actor() -> str:
    return os.environ.get("MODELBOT_ACTOR") or getpass.getuser()


def _emit(args: argparse.Namespace, document: Any, text: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(text())


# ---- commands -------------------------------------------------------------------------------


def cmd_db_upgrade(services: Services, args: argparse.Namespace) -> None:
    print(f"database at revision {services.db.current_revision()}")


def cmd_db_status(services: Services, args: argparse.Namespace) -> None:
    from storage import queries

    with services.registry.reading() as session:
        counts = queries.row_counts(session)
    doc = {"revision": services.db.current_revision(), "dialect": services.db.dialect, "rows": counts}
    _emit(args, doc, lambda: textfmt.table(["table", "rows"], sorted(counts.items())))


def cmd_register(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.registry import NewVersion

    version = services.registry.register(
        NewVersion(
            model=args.model,
            artifact_uri=args.artifact,
            actor=args.actor or _default_actor(),
            metrics=_pairs(args.metric, "metric"),
            params=_pairs(args.param, "param"),
            tags=_pairs(args.tag, "tag"),
            run_id=args.run_id,
            source=args.source,
            dataset_fingerprint=args.dataset_fingerprint,
            description=args.description,
        )
    )
    _emit(args, version.to_dict(), lambda: str(version.version))


def cmd_list(services: Services, args: argparse.Namespace) -> None:
    registry = services.registry
    if args.model:
        page = registry.list_versions(args.model, offset=args.offset, limit=args.limit)
        doc = {"model": args.model, "total": page.total, "offset": page.offset,
               "versions": [v.to_dict() for v in page.items]}
        rows = [
            [f"v{v.version}", ", ".join(v.serving), _metrics_line(v.metrics), v.created_by,
             v.created_at.strftime("%Y-%m-%d %H:%M"), v.status]
            for v in page.items
        ]
        _emit(args, doc, lambda: textfmt.table(["version", "serving", "metrics", "by", "created", "status"], rows)
              + _more(page.total, page.offset, len(page.items)))
        return
    models = registry.list_models(offset=args.offset, limit=args.limit)
    doc = {"total": models.total, "offset": models.offset, "models": [m.to_dict() for m in models.items]}
    envs = registry.environments
    rows = [[m.name, f"v{m.latest_version}"] + [f"v{m.serving[e]}" if e in m.serving else "–" for e in envs]
            for m in models.items]
    _emit(args, doc, lambda: textfmt.table(["model", "latest", *envs], rows)
          + _more(models.total, models.offset, len(models.items)))


def cmd_show(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.refs import parse_ref

    ref = parse_ref(args.ref)
    version = services.registry.show(args.model, ref)
    doc = version.to_dict()
    if ref.environment:
        doc["environment"] = services.registry.environment_state(args.model, ref.environment).to_dict()
    _emit(args, doc, lambda: _version_text(version))


def cmd_compare(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.compare import compare

    comparison = compare(services.registry.versions(args.model, list(args.refs)))
    _emit(args, comparison.to_dict(), lambda: _comparison_text(comparison))


def cmd_history(services: Services, args: argparse.Namespace) -> None:
    entries = services.registry.history(args.model, args.env, limit=args.limit)
    rows = [
        [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.environment, e.action,
         f"v{e.from_version}" if e.from_version else "–", f"v{e.to_version}" if e.to_version else "–",
         e.actor, e.reason or ""]
        for e in entries
    ]
    _emit(args, {"model": args.model, "environment": args.env, "events": [e.to_dict() for e in entries]},
          lambda: textfmt.table(["when (UTC)", "env", "action", "from", "to", "by", "reason"], rows)
          if rows else "no history yet")


def cmd_promote(services: Services, args: argparse.Namespace) -> None:
    """Obeys the environment's approval policy: moves at once, or opens a request."""
    outcome = services.deployments.request_promotion(
        args.model, args.ref, args.env, requester=args.actor, reason=args.reason
    )
    _print_outcome(args, outcome)


def cmd_rollback(services: Services, args: argparse.Namespace) -> None:
    outcome = services.deployments.rollback(args.model, args.env, actor=args.actor, to=args.to, reason=args.reason)
    _print_outcome(args, outcome)


def _print_outcome(args: argparse.Namespace, outcome: Any) -> None:
    if outcome.move is not None:
        move = outcome.move
        before = f"v{move.audit.from_version}" if move.audit.from_version else "nothing"
        verb = "rolled back" if move.audit.action == "rollback" else "promoted"
        _emit(args, {"state": move.state.to_dict(), "audit": move.audit.to_dict(), "request": None},
              lambda: f"{move.state.model} {move.state.environment} {verb}: {before} → v{move.audit.to_version}")
        return
    request = outcome.request
    _emit(args, {"state": None, "audit": None, "request": request.to_dict()},
          lambda: f"request {request.id}: {request.model} v{request.version} to {request.environment} needs "
          f"{request.approvals_needed} approval(s); it expires {request.expires_at:%Y-%m-%d %H:%M} UTC")


# ---- approvals and canaries (CI/CD) ---------------------------------------------------------
# Same rules as the Slack buttons: the domain decides; these print. `request-promotion` prints
# the request id alone, so a pipeline can `ID=$(modelbot request-promotion …)`.


def _slack_groups(services: Services) -> None:
    """Resolve the policy's @user-group handles through Slack when a bot token is configured."""
    if services.settings.slack_bot_token and services.policy.group_handles():
        from bot.slack_client import make_web_client
        from bot.usergroups import attach_group_resolver

        attach_group_resolver(services, make_web_client(services.settings.slack_bot_token,
                                                        services.settings.slack_api_url))


def cmd_request_promotion(services: Services, args: argparse.Namespace) -> None:
    _slack_groups(services)
    outcome = services.deployments.request_promotion(args.model, args.ref, args.env, requester=args.actor,
                                                     reason=args.reason)
    if outcome.request is not None and not args.json:
        print(outcome.request.id)
        return
    _print_outcome(args, outcome)


def cmd_requests(services: Services, args: argparse.Namespace) -> None:
    views = services.deployments.list_requests(pending_only=args.pending, model=args.model, limit=args.limit)
    rows = [[v.id, v.model, f"v{v.version}", v.environment, v.kind, v.status,
             f"{len(v.approvals)}/{v.approvals_needed}", v.requester, "pass" if v.gates_pass else "FAIL",
             v.expires_at.strftime("%Y-%m-%d %H:%M")] for v in views]
    _emit(args, {"requests": [v.to_dict() for v in views]},
          lambda: textfmt.table(["id", "model", "version", "env", "kind", "status", "approvals", "requester",
                                 "gates", "expires (UTC)"], rows)
          if rows else ("no pending requests" if args.pending else "no requests"))


def cmd_approve(services: Services, args: argparse.Namespace) -> None:
    _slack_groups(services)
    _print_vote(args, services.deployments.vote(args.request, args.actor, "approve",
                                                override_reason=args.override_reason))


def cmd_reject(services: Services, args: argparse.Namespace) -> None:
    _slack_groups(services)
    _print_vote(args, services.deployments.vote(args.request, args.actor, "reject", reason=args.reason))


def _print_vote(args: argparse.Namespace, outcome: Any) -> None:
    """`duplicate` succeeds (the vote stands: a retried CI step is fine); a request that was
    already decided or has expired exits 2, because this vote did not count."""
    r = outcome.request
    if outcome.result == "already_decided":
        raise Conflict(" ".join(outcome.notes) or f"Request {r.id} is already {r.status}; nothing changed.")
    move = outcome.move
    texts = {
        "approved": lambda: f"request {r.id} approved: {r.model} {r.environment} v{move.audit.from_version or '–'} "
                            f"→ v{move.audit.to_version}" if move else f"request {r.id} approved",
        "rejected": lambda: f"request {r.id} rejected",
        "counted": lambda: f"request {r.id}: approval recorded, {len(r.approvals)} of {r.approvals_needed}",
        "duplicate": lambda: f"request {r.id}: " + (" ".join(outcome.notes) or "you already voted"),
    }
    _emit(args, {"result": outcome.result, "request": r.to_dict(),
                 "state": move.state.to_dict() if move else None, "audit": move.audit.to_dict() if move else None},
          texts[outcome.result])


def cmd_canary(services: Services, args: argparse.Namespace) -> None:
    state = services.deployments.set_canary(args.model, args.ref, args.env, args.percent, actor=args.actor,
                                            reason=args.reason)
    _print_canary(args, state)


def cmd_canary_abort(services: Services, args: argparse.Namespace) -> None:
    _print_canary(args, services.deployments.abort_canary(args.model, args.env, actor=args.actor, reason=args.reason))


def cmd_canary_promote(services: Services, args: argparse.Namespace) -> None:
    """100 % is a promotion of the running canary, through the approval policy."""
    _slack_groups(services)
    outcome = services.deployments.request_promotion(args.model, "latest", args.env, requester=args.actor,
                                                     reason=args.reason, kind="canary_promote")
    if outcome.request is not None and not args.json:
        print(outcome.request.id)
        return
    _print_outcome(args, outcome)


def _print_canary(args: argparse.Namespace, state: Any) -> None:
    def text() -> str:
        if state.canary is None:
            return f"{state.model} {state.environment}: no canary; stable v{state.stable} takes 100 %"
        return (f"{state.model} {state.environment}: canary v{state.canary} at {state.canary_weight} % beside "
                f"stable v{state.stable}")

    _emit(args, state.to_dict(), text)


# ---- text rendering -------------------------------------------------------------------------


def _metrics_line(metrics: dict[str, float], limit: int = 4) -> str:
    items = [f"{k}={textfmt.number(v)}" for k, v in sorted(metrics.items())[:limit]]
    return " ".join(items) + (" …" if len(metrics) > limit else "")


def _more(total: int, offset: int, shown: int) -> str:
    end = offset + shown
    return f"\n({offset + 1}–{end} of {total}; --offset {end} for more)" if end < total else ""


def _version_text(v: Any) -> str:
    lines = [
        f"{v.model} v{v.version}  [{v.status}]" + (f"  serving: {', '.join(v.serving)}" if v.serving else ""),
        f"artifact:    {v.artifact_uri}",
        f"created:     {v.created_at:%Y-%m-%d %H:%M} UTC by {v.created_by}",
    ]
    for label, value in (("run id", v.run_id), ("source", v.source), ("dataset", v.dataset_fingerprint),
                         ("description", v.description)):
        if value:
            lines.append(f"{label + ':':<12} {value}")
    for title, mapping in (("metrics", v.metrics), ("params", v.params), ("tags", v.tags)):
        if mapping:
            lines.append(f"{title}:")
            lines.extend(f"  {k} = {textfmt.number(val) if title == 'metrics' else val}"
                         for k, val in sorted(mapping.items()))
    return "\n".join(lines)


def _comparison_text(c: Any) -> str:
    from bot.domain.compare import differences

    labels = c.labels
    rows = []
    arrows = {"better": "▲", "worse": "▼", "same": "=", None: ""}
    for name, row in c.metrics.iterrows():
        cells = [name] + [textfmt.number(row[label]) for label in labels]
        for label in labels[1:]:
            cells.append(f"{textfmt.signed(row[f'delta:{label}'])} {textfmt.percent(row[f'rel:{label}'])} "
                         f"{arrows[row[f'verdict:{label}']]}".strip())
        rows.append(cells)
    headers = ["metric", *labels] + [f"Δ {label} vs {labels[0]}" for label in labels[1:]]
    out = [f"{c.model}: {' vs '.join(labels)} (baseline {labels[0]}; ▲ better, ▼ worse)",
           textfmt.table(headers, rows) if rows else "no metrics"]
    for title, frame in (("params that differ", c.params), ("tags that differ", c.tags)):
        if len(frame):
            out.append(f"\n{title}:")
            out.append(textfmt.table([frame.index.name, *labels],
                                     [[d["key"], *("–" if d["values"][label] is None else d["values"][label]
                                                   for label in labels)] for d in differences(frame)]))
    return "\n".join(out)


# ---- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modelbot", description="Model registry, approvals, rollouts and monitoring for Slack.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, func: Callable[..., None], help_text: str, *, json_flag: bool = True) -> _Parser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON document (keys in the README)")
        return p

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.required = True
    db_sub.add_parser("upgrade", help="apply migrations (every command also does this)").set_defaults(
        func=cmd_db_upgrade)
    status = db_sub.add_parser("status", help="schema revision and row counts")
    status.set_defaults(func=cmd_db_status)
    status.add_argument("--json", action="store_true")

    p = command("register", cmd_register, "register a new version of a model (prints the version number)")
    p.add_argument("model")
    p.add_argument("--artifact", required=True, metavar="URI", help="where the model is stored")
    p.add_argument("--metric", action="append", metavar="NAME=FLOAT")
    p.add_argument("--param", action="append", metavar="NAME=VALUE")
    p.add_argument("--tag", action="append", metavar="NAME=VALUE")
    p.add_argument("--run-id", metavar="ID")
    p.add_argument("--source", metavar="REF", help="e.g. a git commit")
    p.add_argument("--dataset-fingerprint", metavar="HASH")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--actor", metavar="NAME", help="who registers (default $MODELBOT_ACTOR or your login)")

    p = command("list", cmd_list, "list models, or the versions of one model (newest first)")
    p.add_argument("model", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)

    p = command("show", cmd_show, "show one version (REF: 7, v7, latest, @production)")
    p.add_argument("model")
    p.add_argument("ref", nargs="?", default="latest")

    p = command("compare", cmd_compare, "compare versions side by side (the first is the baseline)")
    p.add_argument("model")
    p.add_argument("refs", nargs="+", metavar="REF")

    p = command("history", cmd_history, "pointer moves of a model, oldest first")
    p.add_argument("model")
    p.add_argument("--env", metavar="ENV")
    p.add_argument("--limit", type=int, default=50)

    p = command("promote", cmd_promote, "make a version the stable one of an environment")
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("rollback", cmd_rollback, "put the previous stable version (or --to REF) back")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--to", metavar="REF")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("request-promotion", cmd_request_promotion,
                "ask for a promotion under the approval policy (prints the request id; moves at once when "
                "the environment needs no approvals)")
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("requests", cmd_requests, "promotion requests, newest first")
    p.add_argument("--pending", action="store_true", help="only those still waiting for approvals")
    p.add_argument("--model", metavar="MODEL")
    p.add_argument("--limit", type=int, default=50)

    p = command("approve", cmd_approve, "approve a request (same rules as the Approve button)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--override-reason", metavar="TEXT", help="admins: why a failing gate may be overridden")

    p = command("reject", cmd_reject, "reject a request (same rules as the Reject button)")
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", required=True, metavar="TEXT", help="the requester reads this")

    p = command("canary", cmd_canary, "start a canary beside the stable version, or move its weight (1–99 %%)")
    p.add_argument("model")
    p.add_argument("ref")
    p.add_argument("env")
    p.add_argument("percent")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("canary-abort", cmd_canary_abort, "stop the canary: weight 0, the stable version takes all traffic")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("canary-promote", cmd_canary_promote,
                "make the canary the stable version (through the approval policy; prints a request id)")
    p.add_argument("model")
    p.add_argument("env")
    p.add_argument("--actor", required=True, metavar="NAME")
    p.add_argument("--reason", metavar="TEXT")

    p = command("serve", cmd_serve, "run the Slack app: Socket Mode when SLACK_APP_TOKEN is set, else HTTP mode",
                json_flag=False)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--http", action="store_true",
                      help="serve POST /slack/events (needs SLACK_SIGNING_SECRET), /healthz and /metrics")
    mode.add_argument("--socket", action="store_true",
                      help="connect over Socket Mode (needs SLACK_APP_TOKEN); /healthz and /metrics on --port")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=3000, help="TCP port (default 3000)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    p = command("shell", cmd_shell, "try the /model commands in a terminal (like Slack, no workspace needed)",
                json_flag=False)
    p.add_argument("--demo", action="store_true", help="first seed a demo registry (idempotent)")
    p.add_argument("--user", metavar="U123", help="act as this Slack user (default $MODELBOT_SHELL_USER or U0SHELL)")
    p.add_argument("--channel", metavar="C123", help="the channel commands come from (default C0SHELL)")
    _add_import_parser(sub)
    from bot import cli_tokens

    cli_tokens.add_parser(sub, _Parser)
    _add_delivery_parsers(sub)
    from bot import cli_monitoring

    cli_monitoring.add_commands(command)
    from bot import cli_scheduler

    cli_scheduler.add_commands(command)
    return parser


def _add_import_parser(sub: Any) -> None:
    """`modelbot import mlflow …` (see bot/domain/mlflow_import.py for the mapping rules)."""
    imp = sub.add_parser("import", help="bring models in from another registry (mlflow)")
    imp_sub = imp.add_subparsers(dest="import_source", metavar="SOURCE", parser_class=_Parser)
    imp_sub.required = True
    text = "import registered models, versions, run metrics/params and aliases from an MLflow tracking server"
    p = imp_sub.add_parser("mlflow", help=text, description=text + "; re-running changes nothing")
    p.set_defaults(func=cmd_import_mlflow)
    p.add_argument("--tracking-uri", required=True, metavar="URL",
                   help="e.g. http://127.0.0.1:5000; credentials from MLFLOW_TRACKING_TOKEN or "
                        "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD")
    p.add_argument("--model", action="append", metavar="NAME", help="import only this model (repeatable)")
    p.add_argument("--since", metavar="DATE", help="only versions created at/after this ISO date (UTC)")
    p.add_argument("--alias-map", action="append", metavar="ALIAS=ENV",
                   help="alias → environment (repeatable); replaces the default map production, staging, "
                        "prod→production, champion→production, challenger→staging")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def cmd_import_mlflow(services: Services, args: argparse.Namespace) -> None:
    """All input is checked before MLflow is contacted; MLflow failures exit 1, bad input exits 2."""
    from bot.domain import mlflow_import as mi
    from bot.sources.mlflow import MlflowClient, MlflowConfigError, MlflowError

    options = mi.ImportOptions(
        models=tuple(dict.fromkeys(names.model_name(m) for m in args.model or ())),
        since=mi.parse_since(args.since) if args.since else None,
        alias_map=mi.resolve_alias_map(args.alias_map, services.registry.environments),
        dry_run=args.dry_run,
    )
    try:
        with MlflowClient(args.tracking_uri) as client:
            importer = mi.MlflowImporter(services.registry, client, policy=services.policy)
            report = importer.run(options, tracking_uri=client.base_url)
    except MlflowConfigError as exc:
        raise InvalidInput(str(exc)) from None
    except MlflowError as exc:
        raise Unavailable(str(exc)) from None
    _emit(args, report.to_dict(), report.text)


def cmd_serve(services: Services, args: argparse.Namespace) -> None:
    from bot.app import require_slack_settings
    from bot.serve import choose_mode, configure_logging, serve

    mode = choose_mode(services.settings, http=args.http, socket=args.socket)
    require_slack_settings(services, mode)  # one line naming the variable, before logging is set up
    configure_logging(services.settings, args.log_level)
    serve(services, mode=mode, host=args.host, port=args.port)


def cmd_shell(services: Services, args: argparse.Namespace) -> None:
    from bot import shell

    code = shell.main(services, args)
    if code:
        raise SystemExit(code)  # after `finally` closes the database


def _add_delivery_parsers(sub: Any) -> None:
    """`modelbot outbox [--failed|--all] [--json]`, `modelbot outbox retry ID`, `modelbot deliver`."""
    text = "messages and webhooks not delivered yet, newest first (`outbox retry ID` resends a failed one)"
    p = sub.add_parser("outbox", help=text, description=text)
    p.set_defaults(func=cmd_outbox)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only rows that failed permanently")
    which.add_argument("--all", action="store_true", help="delivered rows too")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    actions = p.add_subparsers(dest="outbox_action", metavar="ACTION", parser_class=_Parser)
    text = "send a failed row again (after fixing what made it fail)"
    r = actions.add_parser("retry", help=text, description=text)
    r.set_defaults(func=cmd_outbox_retry)
    r.add_argument("id", type=_outbox_id, metavar="ID")
    text = ("deliver the outbox (Slack messages, webhooks) in the foreground until SIGTERM/SIGINT; "
            "needs SLACK_BOT_TOKEN, honours MODELBOT_SLACK_API_URL and MODELBOT_OUTBOX_*")
    d = sub.add_parser("deliver", help=text, description=text)
    d.set_defaults(func=cmd_deliver)
    d.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def cmd_outbox(services: Services, args: argparse.Namespace) -> None:
    from bot.delivery import admin

    rows = admin.list_rows(services.db, failed_only=args.failed, include_delivered=args.all, limit=args.limit)
    table = [[r.id, r.topic, r.kind, r.template, r.status, r.attempts, (r.last_error or "")[:80]] for r in rows]
    empty = "no failed rows" if args.failed else "nothing waiting: every row was delivered"
    _emit(args, {"rows": [r.to_dict() for r in rows]},
          lambda: textfmt.table(["id", "topic", "kind", "template", "status", "attempts", "last error"], table)
          if table else empty)


def cmd_outbox_retry(services: Services, args: argparse.Namespace) -> None:
    from bot.delivery import admin

    row = admin.retry(services.db, args.id, now=services.clock())
    _emit(args, row.to_dict(), lambda: f"outbox row {row.id} ({row.kind} {row.template}) is pending again; "
          "a running `modelbot deliver` or `modelbot serve` sends it at its next poll")


def cmd_deliver(services: Services, args: argparse.Namespace) -> None:
    """Foreground worker: SIGTERM/SIGINT let the round in flight finish, then exit 0."""
    import signal
    import threading

    from bot.delivery import build_worker
    from bot.serve import configure_logging

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


def _outbox_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 12:
        raise argparse.ArgumentTypeError(f"'{names.preview(raw, 20)}' is not an outbox row id: use a number "
                                         "from `modelbot outbox`")
    return int(raw)


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"'{names.preview(raw, 20)}' is not a TCP port (0–65535)")
    return int(raw)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    services = None
    try:
        from bot.runtime import open_services
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


if __name__ == "__main__":
    sys.exit(main())
