"""`modelbot status` and `modelbot ingest`: monitoring from the terminal (thin, like every verb).


"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.blocks import textfmt
from bot.cli.common import AddCommand, emit
from bot.domain.errors import InvalidInput

if TYPE_CHECKING:
    from bot.services import Services

def add_commands(command: AddCommand, sub: Any) -> None:
    p = command("status", cmd_status, "how a model is doing: latest metrics with changes, drift, availability")
    p.add_argument("model", nargs="?", help="model name (omit for one line per model)")
    p.add_argument("env", nargs="?", help="one environment (default: all)")
    p.add_argument("--window", default="24h", type=_duration, help="compare this window with the one before "
                   "(default 24h)")

    p = command("ingest", cmd_ingest, "load a prediction log with ground truth (CSV, Parquet, JSON lines) as "
                "per-window metric samples")
    p.add_argument("path", help="a file or a quoted glob, like 'logs/*.parquet'")
    p.add_argument("--model", required=True)
    p.add_argument("--version", type=int, help="only rows of this version, or the version of every row")
    p.add_argument("--env", help="environment of the rows (required without an env column)")
    p.add_argument("--features", help="comma-separated feature columns (default: every other column)")
    p.add_argument("--reference", metavar="PATH", help="reference sample for drift (CSV, Parquet, JSON lines)")
    p.add_argument("--window", default="1h", type=_duration, help="window length (default 1h)")
    p.add_argument("--column", action="append", metavar="ROLE=NAME",
                   help="column name for a role: timestamp, prediction, label, score, latency_ms, model, "
                        "version, env, id (repeatable); score=proba_* names one probability column per class")
    p.add_argument("--task", default="classification", choices=["classification", "regression"])
    p.add_argument("--labels", metavar="PATH", help="labels kept apart (columns id, label): joined by the id column")
    p.add_argument("--positive-label", default="1", help="the positive class for precision/recall/AUC (default 1)")
    p.add_argument("--drift-method", default="psi",
                   choices=["psi", "auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon"])
    p.add_argument("--chunk-rows", type=int, default=100_000, help=argparse.SUPPRESS)


def cmd_status(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.monitoring import status

    query = services.status_query(args.model, args.window)
    if args.model is None:
        if args.env:
            raise InvalidInput("Give a model to see one environment: modelbot status MODEL ENV.")
        o = status.overview(services.registry, query, limit=500)
        emit(args, o.to_dict(), lambda: _overview_text(o, textfmt.duration(o.window)))
        return
    s = status.model_status(services.registry, args.model, args.env, query)
    emit(args, s.to_dict(), lambda: _status_text(s, textfmt.duration(s.window)))


def cmd_ingest(services: Services, args: argparse.Namespace) -> None:
    from bot.domain.monitoring.ingest import ingest
    from bot.domain.monitoring.log_files import Location
    from bot.domain.monitoring.prediction_logs import ROLES, LabelsSpec, LogSpec

    columns = {}
    for raw in args.column or ():
        role, sep, name = raw.partition("=")
        if not sep or role not in ROLES or not name:
            raise InvalidInput(f"--column {raw}: write ROLE=NAME with ROLE one of {', '.join(ROLES)}.")
        columns[role] = name
    features = None
    if args.features is not None:
        features = tuple(f.strip() for f in args.features.split(",") if f.strip())
        if not features:
            raise InvalidInput("--features is empty: list columns like --features age,income.")
    if args.version is not None and args.version < 1:
        raise InvalidInput("--version must be a version number, like 7.")
    if args.chunk_rows < 1:
        raise InvalidInput("--chunk-rows must be positive.")
    positive: Any = int(args.positive_label) if args.positive_label.lstrip("-").isdigit() else args.positive_label
    labels = None if args.labels is None else LabelsSpec(Location(path=args.labels))
    spec = LogSpec(model=args.model, environment=args.env, version=args.version, features=features,
                   reference=args.reference, window=args.window, columns=columns, chunk_rows=args.chunk_rows,
                   drift_method=args.drift_method, positive_label=positive, task=args.task, labels=labels)
    result = ingest(services.registry, Location(path=args.path), spec, now=services.clock())
    emit(args, result.to_dict(), lambda: _ingest_text(result))


# ---- text ------------------------------------------------------------------------------------------


def _status_text(s: Any, window: str) -> str:
    from bot.domain.compare import verdict
    from bot.domain.monitoring.status import is_summary_metric

    out = [f"{s.model}: status over the last {window} (numbers of the stable version unless labelled; UTC)"]
    for env in s.environments:
        serving = env.serving
        out.append(f"\n{env.environment}: " + textfmt.serving(serving.stable, serving.previous, serving.canary,
                                                               serving.canary_weight, env.stable_since))
        rows = [m for name, m in sorted(env.metrics.items()) if not is_summary_metric(name)]
        if rows:
            headers = ["metric", f"v{serving.stable}" if serving.stable else "latest", f"Δ{window}"]
            if serving.previous:
                headers += [f"v{serving.previous} before", "Δprev"]
            if serving.canary:
                headers += [f"canary v{serving.canary}"]
            headers.append("at (UTC)")

            def change(delta: float | None, direction: str) -> str:
                return textfmt.change(delta, None if delta is None else verdict(delta, direction))  # type: ignore[arg-type]

            table = []
            for m in rows:
                row = [m.metric, "no data yet" if m.value is None else textfmt.number(m.value),
                       change(m.change_vs_previous_window, m.direction)]
                if serving.previous:
                    row += [textfmt.number(m.previous.stats.mean) if m.previous else "–",
                            change(m.change_vs_previous_version, m.direction)]
                if serving.canary:
                    row.append(textfmt.number(m.canary.window.mean) if m.canary and m.canary.window else "–")
                row.append("–" if m.at is None else f"{m.at:%Y-%m-%d %H:%M}")
                table.append(row)
            out.append(textfmt.table(headers, table))
        a = env.availability
        if a is not None and a.uptime is not None:
            extra = "".join([f", MTTR {a.mttr}" if a.mttr is not None else "",
                             f", MTBF {a.mtbf}" if a.mtbf is not None else ""])
            out.append(f"availability {a.uptime * 100:.3f}%, {len(a.incidents)} incident(s){extra}")
        d = env.drift
        if d is not None:
            top = ", ".join(f"{f.feature} ({f.method} {textfmt.number(f.value, 3)})" for f in d.drifting[:5])
            share = "–" if d.drift_share is None else f"{d.drift_share * 100:.0f}%"
            out.append(f"drift: {share} of features" + (", dataset drift" if d.dataset_drift else "")
                       + (f"; drifting: {top}" if top else ""))
        q = env.data_quality
        if q is not None:
            issues = ", ".join(f"{i.feature} {i.kind.replace('_', ' ')} {i.share * 100:.1f}%" for i in q.issues[:5])
            out.append(f"data quality: {issues or f'{q.features_checked} features clean'}")
        c = env.coverage
        if c is not None and c.share is not None:
            out.append(f"labels: for {c.share * 100:.0f}% of the last {window}'s predictions")
        for alert in env.firing:
            out.append(f"firing: {alert.get('name', 'alert')} {alert.get('summary', '')}".rstrip())
        out += [f"note: {n}" for n in env.notes]
    return "\n".join(out)


def _overview_text(o: Any, window: str) -> str:
    rows = []
    for line in o.models:
        for e in line.environments or ():
            drift = "–" if e.drift_share is None else f"{e.drift_share * 100:.0f}%"
            rows.append([line.model, e.environment, f"v{e.stable}" if e.stable else "–",
                         f"{e.quality[0]} {textfmt.number(e.quality[1], 3)}" if e.quality else "–",
                         textfmt.number(e.latency[1], 1) if e.latency else "–",
                         "–" if e.uptime is None else f"{e.uptime * 100:.2f}%",
                         drift + (" (dataset)" if e.dataset_drift else ""),
                         "–" if e.label_coverage is None else f"{e.label_coverage * 100:.0f}%",
                         e.firing or "–", "stale" if e.stale else ("no data yet" if e.newest is None else "")])
        if not line.environments:
            rows.append([line.model, "–", "–", "–", "–", "–", "–", "–", "–", "no data"])
    if not rows:
        return "No models registered yet."
    return f"last {window}\n" + textfmt.table(
        ["model", "env", "serving", "quality", "p95 ms", "uptime", "drift", "labels", "firing", ""], rows)


def _ingest_text(result: Any) -> str:
    s = result.summary
    windows = s.windows
    regression = any(w.digest.regression is not None for w in windows)
    quality = ("mae", "rmse", "r2") if regression else ("accuracy", "f1", "roc_auc")
    head = (f"recorded {result.recorded} samples for {result.model} from {result.location}: {s.rows_used:,} of "
            f"{s.rows_read:,} rows in {len(windows)} window(s) from {windows[0].start:%Y-%m-%d %H:%M} to "
            f"{windows[-1].end:%Y-%m-%d %H:%M} UTC")
    rows = []
    for w in windows:
        m = w.metrics(result.now)
        rows.append([w.environment, f"v{w.version}" if w.version else "–", f"{w.start:%Y-%m-%d %H:%M}",
                     w.digest.rows, *(textfmt.number(m.get(k)) for k in
                                      (*quality, "latency_p95_ms", "drift_share"))])
    table = textfmt.table(["env", "version", "window start", "rows", *quality, "p95 ms", "drift share"], rows)
    notes = "".join(f"\nnote: {n}" for n in s.notes)
    return f"{head}\n{table}{notes}"


def _duration(raw: str) -> timedelta:
    from bot.domain.durations import parse_duration

    try:
        value = parse_duration(raw)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError("the window must be longer than zero")
    return value
