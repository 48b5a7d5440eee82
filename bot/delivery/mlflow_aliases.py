"""Send `mlflow_alias` outbox rows: the pointer moves modelbot decided, written to MLflow's aliases.

The rule of what to write lives in `bot.domain.mlflow.outbound`; this module only turns its
outcome into the worker's: MLflow down or failing (connection refused, timeouts, 5xx, 429)
is retried with the worker's backoff, so writes queue while MLflow is away and complete in
order when it is back; an answer that will not change by itself (the model or version is not
in MLflow, credentials refused, a request MLflow rejects) fails the row, which
`modelbot outbox --failed` and `/model show MODEL @ENV` then show, and
`modelbot outbox retry ID` sends again once fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery.jobs import Job, Outcome
from bot.domain.errors import Unavailable
from bot.domain.mlflow.outbound import KIND, AliasWriter, NotInMlflow
from bot.domain.mlflow.source import MlflowAuthError, MlflowError, MlflowServerError, MlflowUnreachable

if TYPE_CHECKING:
    from bot.services import Services

__all__ = ["KIND", "MlflowAliasSender", "build_sender"]


class MlflowAliasSender:
    def __init__(self, writer: AliasWriter) -> None:
        self._writer = writer

    def send(self, job: Job) -> Outcome:
        try:
            result = self._writer.apply(job.id, job.data, retried=job.attempts > 1 or job.maybe_sent)
        except NotInMlflow as exc:
            return Outcome.failed(f"{exc} Then `modelbot outbox retry {job.id}`.")
        except MlflowAuthError as exc:
            return Outcome.failed(f"{exc} Fix the credentials, then `modelbot outbox retry {job.id}`.")
        except MlflowUnreachable as exc:
            return Outcome.retry(str(exc), maybe_sent=False, transport=True)
        except (MlflowServerError, Unavailable) as exc:
            return Outcome.retry(str(exc), maybe_sent=False)
        except MlflowError as exc:
            return Outcome.failed(str(exc))
        return Outcome.delivered(result.to_dict(), label="skipped" if result.skipped else None)


def build_sender(services: Services) -> MlflowAliasSender | None:
    """The sender when `[mlflow]` is configured (a ConfigError names its line otherwise)."""
    from bot.config.mlflow import mlflow_config
    from bot.sources.mlflow import sync_client

    settings = mlflow_config(services.policy)
    if settings is None:
        return None
    # one quick retry of a refused connection; anything longer is the worker's backoff
    writer = AliasWriter(services.registry, settings, sync_client(settings, retries=1), clock=services.clock)
    return MlflowAliasSender(writer)
