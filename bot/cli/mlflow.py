"""`modelbot import mlflow`: bring an MLflow registry in (see bot/domain/mlflow_import.py for the mapping)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.common import AddCommand, Parser, emit
from bot.domain import names
from bot.domain.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from bot.services import Services


def add_commands(command: AddCommand, sub: Any) -> None:
    """`modelbot import mlflow …` (see bot/domain/mlflow_import.py for the mapping rules)."""
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
    emit(args, report.to_dict(), report.text)
