"""Terminal text of the MLflow verbs: the import report, `modelbot mlflow status`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.blocks import textfmt
from bot.domain import names

if TYPE_CHECKING:
    from bot.domain.mlflow.state import SyncStatus
    from bot.domain.mlflow_import import ImportReport


def import_report(report: ImportReport) -> str:
    rows = [
        [m.name if len(m.name) <= 40 else names.preview(m.name), m.outcome, len(m.created), len(m.updated),
         len(m.unchanged), len(m.skipped),
         ", ".join(f"{c.environment} → v{c.to_version}" for c in m.moves) or "–"]
        for m in report.models
    ]
    t = report.totals()
    head = f"MLflow import from {report.tracking_uri}" + (" (dry run: nothing written)" if report.dry_run else "")
    lines = [head]
    if rows:
        lines.append(textfmt.table(
            ["model", "result", "created", "updated", "unchanged", "skipped", "pointer moves"], rows))
    lines.append(
        f"models: {t['models_created']} created, {t['models_updated']} updated, {t['models_unchanged']} "
        f"unchanged, {t['models_skipped']} skipped · versions: {t['versions_created']} created, "
        f"{t['versions_updated']} updated, {t['versions_unchanged']} unchanged, {t['versions_skipped']} "
        f"skipped · pointer moves: {t['pointer_moves']} · warnings: {t['warnings']}"
    )
    warnings = report.all_warnings()
    if warnings:
        lines.append("warnings:")
        lines.extend(f"  - {w}" for w in warnings)
    return "\n".join(lines)


def sync_status(status: SyncStatus, *, live_error: str | None = None) -> str:
    s = status.settings
    aliases = ", ".join(f"{env} → {alias}" for env, alias in s.aliases.items()) or "none"
    suffix = f" (canaries: alias + \"{s.canary_alias_suffix}\")" if s.canary_alias_suffix else " (no canary aliases)"
    lines = [
        f"MLflow {s.tracking_uri}: following {s.describe_models()}; {len(status.followed)} of them in modelbot",
        f"aliases: {aliases}{suffix}; external moves: {s.external_moves}; "
        f"poll every {_seconds(s.poll_interval.total_seconds())}",
    ]
    event = status.last_event
    if event is None:
        lines.append("last webhook: none received (polling only; `modelbot mlflow setup --public-url URL` adds one)")
    else:
        lag = f", lag {_seconds(event['lag_s'])}" if event.get("lag_s") is not None else ""
        lines.append(f"last webhook: {event['event']} {event.get('model') or ''} at {event['received_at']}{lag}: "
                     f"{event.get('outcome') or ''}".replace("  ", " "))
    poll = status.last_poll
    if poll is None:
        lines.append("last poll: never (the scheduler runs it in `modelbot serve` or `modelbot scheduler`)")
    else:
        ok = f"last success {poll['success_at']} ({_seconds(poll['age_s'])} ago)" if poll["success_at"] else "never succeeded"
        error = f"; last error: {poll['error']}" if poll.get("error") else ""
        lines.append(f"last poll: {poll['attempt_at']}, {poll['models_checked']} models; {ok}{error}")
    lines.append(f"alias writes waiting: {status.pending_writes}; failed: {len(status.failed_writes)}"
                 + "".join(f"\n  - outbox row {f['id']} ({f['model']} {f['environment']}): {f['error']}"
                           for f in status.failed_writes))
    source = "read from MLflow just now" if status.live else f"as last known ({live_error or 'MLflow not read'})"
    if status.aliases:
        rows = [[a.model, a.environment + (" canary" if a.canary else ""), a.alias, _v(a.serving), _v(a.mlflow),
                 a.status] for a in status.aliases]
        lines.append(f"aliases, {source}:")
        lines.append(textfmt.table(["model", "environment", "alias", "modelbot", "MLflow", "state"], rows))
    drift = status.drift
    lines.append("drift: none" if not drift else "drift:\n" + "\n".join(f"  - {a.model}: {a.describe()}" for a in drift))
    return "\n".join(lines)


def _v(number: int | None) -> str:
    return f"v{number}" if number is not None else "–"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"
