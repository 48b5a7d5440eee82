"""MLflow from the command line: `modelbot import mlflow` (the one-off history import, see
bot/domain/mlflow_import.py) and `modelbot mlflow setup|status` (the live sync, see bot/domain/mlflow/)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.cli.common import AddCommand, Parser, emit
from bot.domain import names
from bot.domain.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from bot.domain.mlflow.settings import SyncSettings
    from bot.services import Services

WEBHOOK_NAME = "modelbot"
_HOST = re.compile(r"[a-z0-9.:-]+")  # a DNS name or an IP address (IPv6 without its brackets)
# what the sync handles (bot.domain.mlflow.inbound.EVENTS), as MLflow names them
WEBHOOK_EVENTS = ("registered_model.created", "model_version.created", "model_version_tag.set",
                  "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted")


def add_commands(command: AddCommand, sub: Any) -> None:
    """`modelbot import mlflow …`, `modelbot mlflow setup --public-url URL`, `modelbot mlflow status`."""
    imp = sub.add_parser("import", help="bring models in from another registry (mlflow)")
    imp_sub = imp.add_subparsers(dest="import_source", metavar="SOURCE", parser_class=Parser)
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

    group = sub.add_parser("mlflow", help="follow an MLflow registry live ([mlflow] in modelbot.toml)")
    verbs = group.add_subparsers(dest="mlflow_verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    text = ("create or update MLflow's webhook to this modelbot (events: " + ", ".join(WEBHOOK_EVENTS)
            + "), signed with the secret in [mlflow] webhook_secret_env, and send it a test delivery")
    s = verbs.add_parser("setup", help="create or update MLflow's webhook to this modelbot", description=text)
    s.set_defaults(func=cmd_mlflow_setup)
    s.add_argument("--public-url", required=True, metavar="URL",
                   help="where MLflow reaches `modelbot serve`, e.g. https://modelbot.example.com")
    s.add_argument("--no-test", action="store_true", help="do not ask MLflow for a test delivery")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    text = "what is followed, the last webhook and poll, alias writes waiting or failed, and drift"
    t = verbs.add_parser("status", help=text, description=text + " (aliases read from MLflow unless --offline)")
    t.set_defaults(func=cmd_mlflow_status)
    t.add_argument("--offline", action="store_true", help="do not contact MLflow: aliases as modelbot last knew them")
    t.add_argument("--json", action="store_true", help="print one JSON document")


def cmd_import_mlflow(services: Services, args: argparse.Namespace) -> None:
    """All input is checked before MLflow is contacted; MLflow failures exit 1, bad input exits 2."""
    from bot.blocks import mlflow_text
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
    emit(args, report.to_dict(), lambda: mlflow_text.import_report(report))


def cmd_mlflow_setup(services: Services, args: argparse.Namespace) -> None:
    """Idempotent: the webhook named `modelbot` is updated in place when it exists."""
    from bot.config.settings import named_secret
    from bot.sources.mlflow import MlflowError, MlflowRequestError, sync_client
    from bot.web.mlflow_webhook import WEBHOOK_PATH

    settings = _settings(services)
    if not settings.webhook_secret_env:
        raise InvalidInput("Name the webhook secret's variable first: webhook_secret_env = "
                           "\"MODELBOT_MLFLOW_WEBHOOK_SECRET\" in [mlflow].")
    secret = named_secret(settings.webhook_secret_env)
    if not secret:
        raise InvalidInput(f"{settings.webhook_secret_env} is not set: put a long random secret in it (for example "
                           "`openssl rand -hex 32`), here and where `modelbot serve` runs.")
    url = webhook_url(args.public_url, WEBHOOK_PATH)
    description = "modelbot: new versions, tags and alias moves (managed by `modelbot mlflow setup`)"
    try:
        with sync_client(settings) as mlflow:
            existing = next((h for h in mlflow.list_webhooks() if h.name == WEBHOOK_NAME), None)
            if existing is None:
                hook = mlflow.create_webhook(name=WEBHOOK_NAME, url=url, events=WEBHOOK_EVENTS, secret=secret,
                                             description=description)
            else:
                hook = mlflow.update_webhook(existing.webhook_id, url=url, events=WEBHOOK_EVENTS, secret=secret,
                                             description=description)
            test = None if args.no_test else mlflow.test_webhook(hook.webhook_id, "registered_model.created")
    except MlflowRequestError as exc:
        raise Unavailable(_refused_url(str(exc), settings)) from None
    except MlflowError as exc:
        raise Unavailable(str(exc)) from None
    document = {"webhook_id": hook.webhook_id, "name": hook.name, "url": hook.url, "events": list(hook.events),
                "status": hook.status, "action": "created" if existing is None else "updated",
                "test": None if test is None else {"success": test[0], "detail": test[1]}}

    def text() -> str:
        lines = [f"MLflow webhook {hook.name} ({hook.webhook_id}) {document['action']}: {hook.url}",
                 f"events: {', '.join(hook.events)}; status {hook.status}"]
        if test is not None:
            lines.append(f"test delivery: {'OK' if test[0] else 'FAILED'} ({test[1]})")
            if not test[0]:
                lines.append(_unreachable_hint(settings))
        lines.append("MLflow may take up to MLFLOW_WEBHOOK_CACHE_TTL (60 s by default) to send to a new webhook.")
        return "\n".join(lines)

    emit(args, document, text)
    if test is not None and not test[0]:
        raise Unavailable(f"MLflow could not deliver the test webhook to {url}: {test[1]}")


def cmd_mlflow_status(services: Services, args: argparse.Namespace) -> None:
    from bot.blocks import mlflow_text
    from bot.domain.mlflow import state
    from bot.sources.mlflow import MlflowError, sync_client

    settings = _settings(services)
    live: dict[str, dict[str, int]] | None = None
    live_error = "--offline" if args.offline else None
    if not args.offline:
        try:
            with sync_client(settings, retries=0) as mlflow:
                live = {}
                for name in state.followed_models(services.registry, settings):
                    model = mlflow.get_registered_model(name)
                    live[name] = dict(model.aliases) if model is not None else {}
        except MlflowError as exc:
            live, live_error = None, str(exc)
    status = state.sync_status(services.registry, settings, now=services.clock(), live=live)
    emit(args, {**status.to_dict(), "live_error": live_error},
         lambda: mlflow_text.sync_status(status, live_error=live_error))


def webhook_url(public_url: str, path: str) -> str:
    """`--public-url` plus the webhook path; refused with one sentence unless it is a plain http(s) base URL."""
    text = public_url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or not _HOST.fullmatch(parts.hostname) or " " in text):
        # not echoed: a URL typed by mistake may carry a password
        raise InvalidInput("--public-url is not an http(s) URL: give the address MLflow reaches modelbot at, like "
                           "https://modelbot.example.com.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("--public-url must be a plain base URL, without credentials, query or fragment.")
    return text + path


def _settings(services: Services) -> SyncSettings:
    from bot.config.mlflow import mlflow_config

    settings = mlflow_config(services.policy)
    if settings is None:
        raise InvalidInput(f"There is no [mlflow] section in {services.policy.source}: add one (README, "
                           "\"Using modelbot with MLflow\") to follow an MLflow registry.")
    return settings


def _refused_url(message: str, settings: SyncSettings) -> str:
    if "non-public IP" in message or "webhook URL scheme" in message:
        return (f"MLflow refused the webhook URL ({message}). MLflow delivers only to public https addresses "
                "unless its server runs with MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true (private and loopback "
                "addresses) and MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https (plain http). "
                f"Meanwhile modelbot follows MLflow by polling every {_every(settings)}.")
    return message


def _unreachable_hint(settings: SyncSettings) -> str:
    return (f"Check that MLflow's server can reach this URL (a private address needs "
            f"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true on the MLflow server) and that both sides use the same secret; "
            f"meanwhile modelbot follows MLflow by polling every {_every(settings)}.")


def _every(settings: SyncSettings) -> str:
    seconds = int(settings.poll_interval.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
