"""What the domain needs from an MLflow tracking server, independent of how it is reached.

The import and the live sync speak to MLflow only through these protocols and get plain
frozen dataclasses back, so no HTTP (and no `requests`) ever reaches the domain;
`bot.sources.mlflow.MlflowClient` implements them over MLflow's REST API 2.0, and tests can
hand in answers a live server cannot easily produce. Every failure is one typed error whose
message is a user-facing sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from bot.domain import names

# ---- errors ---------------------------------------------------------------------------------


class MlflowError(Exception):
    """Anything that went wrong talking to MLflow; the message is one user-facing sentence."""


class MlflowConfigError(MlflowError):
    """The tracking URI itself is unusable (the user's input, not the server's fault)."""


class MlflowUnreachable(MlflowError):
    """No HTTP answer at all: refused, unresolvable, or timed out after the retries."""


class MlflowAuthError(MlflowError):
    """401/403: missing or wrong credentials."""


class MlflowServerError(MlflowError):
    """5xx or 429, still failing after the retries."""


class MlflowRequestError(MlflowError):
    """Another 4xx: the server understood us and said no."""


class MlflowNotFound(MlflowRequestError):
    """404 RESOURCE_DOES_NOT_EXIST: the named model, version or run is not there."""


class MlflowBadResponse(MlflowError):
    """The answer is not the JSON an MLflow server sends (wrong URL, proxy page, other service)."""


def check_tracking_uri(uri: str) -> str:
    """Return the base URL without a trailing slash, or raise MlflowConfigError saying why not.

    Only http(s) servers are supported: `file:`, `sqlite:` and `databricks` URIs are what the
    mlflow package accepts, but they are not a REST endpoint. Credentials inside the URL are
    refused so they do not end up in shell history, logs and error messages.
    """
    text = (uri or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a non-numeric port
    except ValueError:
        raise MlflowConfigError(f"'{names.preview(text, 60)}' is not a URL: use the tracking server's address, "
                                "for example http://127.0.0.1:5000.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MlflowConfigError(
            f"'{names.preview(text, 60)}' is not an http(s) URL of an MLflow tracking server: "
            "use for example http://127.0.0.1:5000 (file:, sqlite: and databricks URIs are not supported)."
        )
    if parts.username or parts.password:
        raise MlflowConfigError(
            "Do not put credentials in the tracking URI: set MLFLOW_TRACKING_TOKEN, or "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
        )
    if parts.query or parts.fragment:
        raise MlflowConfigError(f"'{names.preview(text, 60)}' has a query or fragment: give the server's base URL only.")
    del port
    return text.rstrip("/")


# ---- what MLflow answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowRun:
    """The parts of a run modelbot keeps: latest metric values, params and run tags."""

    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None


@dataclass(frozen=True)
class MlflowVersion:
    """One model version as the registry reports it (model-version object of REST API 2.0)."""

    name: str
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    user_id: str | None
    description: str | None
    source: str | None
    run_id: str | None
    run_link: str | None
    storage_location: str | None
    status: str
    status_message: str | None
    current_stage: str | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowModel:
    """A registered model with its aliases (MLflow ≥ 2.3) and tags."""

    name: str
    description: str | None
    created_at: datetime | None
    updated_at: datetime | None
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


# ---- what the domain asks ---------------------------------------------------------------------


class MlflowSource(Protocol):
    """What the history import reads."""

    def search_registered_models(self) -> Iterable[MlflowModel]: ...

    def get_registered_model(self, name: str) -> MlflowModel | None: ...

    def search_model_versions(self, name: str) -> list[MlflowVersion]: ...

    def get_run(self, run_id: str) -> MlflowRun | None: ...


class MlflowRegistry(MlflowSource, Protocol):
    """What the live sync needs besides: one version by number, and alias writes.

    `set_alias` raises MlflowNotFound when the model or version does not exist in MLflow;
    `delete_alias` of an alias that is not set succeeds (MLflow answers it like any other).
    """

    def get_model_version(self, name: str, version: int) -> MlflowVersion | None: ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...
