"""The `mlflow-poll` job: reconcile modelbot with MLflow every `[mlflow] poll_interval`.

The fallback when webhooks are not set up (or MLflow may not reach modelbot), and the net
under a delivery that was lost: the same reconciliation a webhook runs, for every followed
model. Like every job it logs and swallows its own failure; `modelbot mlflow status` shows
the last poll and its error.
"""

from __future__ import annotations

import logging

from bot.jobs.jobs import current_services

log = logging.getLogger("modelbot.mlflow")


def poll() -> None:
    from bot.config.mlflow import mlflow_config
    from bot.domain.mlflow.inbound import MlflowSync
    from bot.sources.mlflow import sync_client

    services = current_services()
    try:
        settings = mlflow_config(services.policy)
        if settings is None:
            return
        with sync_client(settings) as client:
            report = MlflowSync(services.registry, services.policy, settings, client, clock=services.clock).poll()
    except Exception:
        log.exception("MLflow poll failed")
        return
    changed = [o for o in report.outcomes if o.created or o.updated or o.external]
    for outcome in changed:
        log.info("MLflow poll, %s: %s", outcome.model, outcome.summary())
    for error in report.errors:
        log.warning("MLflow poll: %s", error)
