"""`modelbot db|register|list|show|compare|history`: the registry from the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, Parser, default_actor, emit, more, pairs

if TYPE_CHECKING:
    from bot.domain.compare import Comparison
    from bot.domain.entities import EnvironmentState
    from bot.services import Services


def cmd_db_upgrade(services: Services, args: argparse.Namespace) -> None:
    print(f"database at revision {services.db.current_revision()}")


def cmd_db_status(services: Services, args: argparse.Namespace) -> None:
    from storage.queries import registry as queries

    with services.registry.reading() as session:
        counts = queries.row_counts(session)
    doc = {"revision": services.db.current_revision(), "dialect": services.db.dialect, "rows": counts}
    emit(args, doc, lambda: textfmt.table(["table", "rows"], sorted(counts.items())))


def cmd_register(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.registry import NewVersion

    version = services.registry.register(
        NewVersion(
            model=args.model,
            artifact_uri=args.artifact,
            actor=args.actor or default_actor(services),
            metrics=pairs(args.metric, "metric"),
            params=pairs(args.param, "param"),
            tags=pairs(args.tag, "tag"),
            run_id=args.run_id,
            source=args.source,
            dataset_fingerprint=args.dataset_fingerprint,
            description=args.description,
        )
    )
    emit(args, version.to_dict(), lambda: str(version.version))


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
        emit(args, doc, lambda: textfmt.table(["version", "serving", "metrics", "by", "created", "status"], rows)
              + more(page.total, page.offset, len(page.items)))
        return
    models = registry.list_models(offset=args.offset, limit=args.limit)
    doc = {"total": models.total, "offset": models.offset, "models": [m.to_dict() for m in models.items]}
    envs = registry.environments
    rows = [[m.name, f"v{m.latest_version}"] + [f"v{m.serving[e]}" if e in m.serving else "–" for e in envs]
            for m in models.items]
    emit(args, doc, lambda: textfmt.table(["model", "latest", *envs], rows)
          + more(models.total, models.offset, len(models.items)))


def cmd_show(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.refs import parse_ref

    ref = parse_ref(args.ref)
    version = services.registry.show(args.model, ref)
    doc = version.to_dict()
    if not ref.environment:
        emit(args, doc, lambda: _version_text(version))
        return
    state = services.registry.environment_state(args.model, ref.environment)
    doc["environment"] = state.to_dict()
    emit(args, doc, lambda: _serving_text(state) + "\n\n" + _version_text(version))


def cmd_compare(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.compare import compare

    comparison = compare(services.registry.versions(args.model, list(args.refs)))
    emit(args, comparison.to_dict(), lambda: _comparison_text(comparison))


def cmd_history(services: Services, args: argparse.Namespace) -> None:
    entries = services.registry.history(args.model, args.env, limit=args.limit)
    rows = [
        [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.environment, e.action,
         f"v{e.from_version}" if e.from_version else "–",
         (f"v{e.to_version}" if e.to_version else "–") + (f" at {e.weight} %" if e.weight is not None else ""),
         e.actor, e.reason or ""]
        for e in entries
    ]
    emit(args, {"model": args.model, "environment": args.env, "events": [e.to_dict() for e in entries]},
          lambda: textfmt.table(["when (UTC)", "env", "action", "from", "to", "by", "reason"], rows)
          if rows else "no history yet")


def add_commands(command: AddCommand, sub: Any) -> None:
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=Parser)
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

    p = command("history", cmd_history, "what happened to a model: moves, requests, votes, refusals; oldest first")
    p.add_argument("model")
    p.add_argument("--env", metavar="ENV")
    p.add_argument("--limit", type=int, default=50)


# ---- text rendering ---------------------------------------------------------------------------


def _metrics_line(metrics: dict[str, float], limit: int = 4) -> str:
    items = [f"{k}={textfmt.number(v)}" for k, v in sorted(metrics.items())[:limit]]
    return " ".join(items) + (" …" if len(metrics) > limit else "")


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


def _serving_text(s: EnvironmentState) -> str:
    """What a serving layer reads for one environment (the same fields as `--json`'s `environment`)."""
    def line(label: str, version: int | None, uri: str | None, note: str = "") -> str:
        return f"{label:<10}{'v' + str(version) if version else '–':<6}{uri or ''}{note}".rstrip()

    lines = [f"{s.model} in {s.environment}  (revision {s.revision}"
             + (f", updated {s.updated_at:%Y-%m-%d %H:%M} UTC)" if s.updated_at else ")"),
             line("stable", s.stable, s.stable_artifact_uri, f"  {100 - s.canary_weight} %" if s.canary else ""),
             line("canary", s.canary, s.canary_artifact_uri, f"  {s.canary_weight} %" if s.canary else ""),
             line("previous", s.previous, s.previous_artifact_uri, "  kept warm: `rollback` switches back to it"
                  if s.previous else "")]
    return "\n".join(lines)


def _comparison_text(c: Comparison) -> str:
    labels = c.labels
    rows = []
    arrows = {"better": "▲", "worse": "▼", "same": "=", None: ""}
    for m in c.metrics:
        cells = [m.metric] + [textfmt.number(m.values[label]) for label in labels]
        for label in labels[1:]:
            d = m.deltas[label]
            cells.append(f"{textfmt.signed(d.absolute)} {textfmt.percent(d.relative)} {arrows[d.verdict]}".strip())
        rows.append(cells)
    headers = ["metric", *labels] + [f"Δ {label} vs {labels[0]}" for label in labels[1:]]
    out = [f"{c.model}: {' vs '.join(labels)} (baseline {labels[0]}; ▲ better, ▼ worse)",
           textfmt.table(headers, rows) if rows else "no metrics"]
    for title, key, diffs in (("params that differ", "param", c.params), ("tags that differ", "tag", c.tags)):
        if diffs:
            out.append(f"\n{title}:")
            out.append(textfmt.table([key, *labels], [[d.key, *("–" if d.values[label] is None else d.values[label]
                                                               for label in labels)] for d in diffs]))
    return "\n".join(out)
