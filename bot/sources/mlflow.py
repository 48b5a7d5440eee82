"""A small MLflow tracking-server client over its REST API 2.0, built on `requests`.

Why not the `mlflow` package: it pins its own pandas/numpy/SQLAlchemy ranges and does not
import beside ours (pandas 3), and the import needs five read-only endpoints. This module
speaks exactly those, hands back plain frozen dataclasses (no HTTP ever happens outside this
module), and turns every way a server can fail into one typed error whose message says what
to check:

* unreachable (connection refused, DNS, timeouts) → `MlflowUnreachable`
* 401/403 → `MlflowAuthError` (credentials come from `MLFLOW_TRACKING_TOKEN`, or
  `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`, like MLflow's own client; they are
  never logged nor put in a message)
* 5xx/429 still failing after the retries → `MlflowServerError`
* an answer that is not JSON (a login page, a proxy's HTML) → `MlflowBadResponse`

Transient failures (429, 502/503/504/500, connection errors, read timeouts) are retried with
exponential backoff by urllib3's `Retry`; only GETs are sent, so retrying is always safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

API_PREFIX = "/api/2.0/mlflow/"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
# A server may ask for a long pause with Retry-After; an interactive import should not hang for it.
MAX_RETRY_AFTER_S = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_PAGES = 100_000  # a server that keeps handing out page tokens is broken, not big


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
    """404 RESOURCE_DOES_NOT_EXIST: the named model or run is not there."""


class MlflowBadResponse(MlflowError):
    """The answer is not the JSON an MLflow server sends (wrong URL, proxy page, other service)."""


# ---- what the client returns ----------------------------------------------------------------


@dataclass(frozen=True)
class MlflowRun:
    """The parts of a run the import uses: latest metric values, params and run tags."""

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


# ---- the client -----------------------------------------------------------------------------


class _CappedRetry(Retry):
    """urllib3's Retry, but a server's Retry-After is honoured only up to MAX_RETRY_AFTER_S."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER_S)


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
        raise MlflowConfigError(f"'{_preview(text)}' is not a URL: use the tracking server's address, "
                                "for example http://127.0.0.1:5000.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MlflowConfigError(
            f"'{_preview(text)}' is not an http(s) URL of an MLflow tracking server: "
            "use for example http://127.0.0.1:5000 (file:, sqlite: and databricks URIs are not supported)."
        )
    if parts.username or parts.password:
        raise MlflowConfigError(
            "Do not put credentials in the tracking URI: set MLFLOW_TRACKING_TOKEN, or "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
        )
    if parts.query or parts.fragment:
        raise MlflowConfigError(f"'{_preview(text)}' has a query or fragment: give the server's base URL only.")
    del port
    return text.rstrip("/")


class MlflowClient:
    """Read-only client for the endpoints the import needs. Holds one pooled `requests.Session`."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        env: Mapping[str, str] | None = None,
        retries: int = 3,
        backoff_s: float = 0.3,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
        page_size: int = 200,
    ) -> None:
        self.base_url = check_tracking_uri(tracking_uri)
        self.timeout = timeout
        self.page_size = page_size
        self.attempts = retries + 1
        env = os.environ if env is None else env
        self._session = requests.Session()
        retry = _CappedRetry(
            total=retries, connect=retries, read=retries, status=retries, other=0,
            backoff_factor=backoff_s, backoff_max=10.0, status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}), raise_on_status=False, respect_retry_after_header=True,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=4)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "modelbot-mlflow-import"
        self._session.headers["Accept"] = "application/json"
        # Same precedence as MLflow's own client: basic auth when both parts are set, else a token.
        username, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
        token = env.get("MLFLOW_TRACKING_TOKEN")
        if username and password:
            self._session.auth = (username, password)
        elif token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._auth_hint = "the credentials from MLFLOW_TRACKING_*" if (username and password) or token else (
            "no credentials: set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            self._session.verify = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self._session.verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]

    def __repr__(self) -> str:  # never shows the session, whose headers hold credentials
        return f"MlflowClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- endpoints ----------------------------------------------------------------------

    def search_registered_models(self) -> Iterator[MlflowModel]:
        """Every registered model, page by page (`registered-models/search`)."""
        for item in self._pages("registered-models/search", "registered_models",
                                {"max_results": min(self.page_size, 1000)}):
            yield _model(item)

    def get_registered_model(self, name: str) -> MlflowModel | None:
        """One registered model by exact name, or None if MLflow has none by that name."""
        try:
            body = self._get("registered-models/get", {"name": name})
        except MlflowNotFound:
            return None
        return _model(_field(body, "registered_model", dict, "registered-models/get"))

    def search_model_versions(self, name: str) -> list[MlflowVersion]:
        """All live versions of one model, oldest first (deleted versions are not returned by MLflow)."""
        if "'" not in name:
            expression = f"name='{name}'"
        elif '"' not in name:
            expression = f'name="{name}"'
        else:
            raise MlflowRequestError(f"Model name '{_preview(name)}' has both quote characters and cannot be searched.")
        versions = [_version(item) for item in self._pages(
            "model-versions/search", "model_versions", {"filter": expression, "max_results": self.page_size})]
        return sorted(versions, key=lambda v: v.version)

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run's latest metric values, params and tags; None when the run no longer exists."""
        try:
            body = self._get("runs/get", {"run_id": run_id})
        except MlflowNotFound:
            return None
        run = _field(body, "run", dict, "runs/get")
        info = run.get("info") or {}
        data = run.get("data") or {}
        return MlflowRun(
            run_id=str(info.get("run_id") or info.get("run_uuid") or run_id),
            metrics={str(m["key"]): _float(m.get("value")) for m in _list(data, "metrics") if "key" in m},
            params=_pairs(_list(data, "params")),
            tags=_pairs(_list(data, "tags")),
            user_id=_text(info.get("user_id")),
        )

    # ---- transport ----------------------------------------------------------------------

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self._get(path, {**params, **({"page_token": token} if token else {})})
            items = body.get(key) or []
            if not isinstance(items, list):
                raise MlflowBadResponse(f"{self.base_url} answered {path} with '{key}' that is not a list.")
            yield from (item for item in items if isinstance(item, dict))
            token = body.get("next_page_token") or None
            if token is None:
                return
            if token in seen:
                raise MlflowBadResponse(f"{self.base_url} repeated a page token for {path}; stopping.")
            seen.add(token)
        raise MlflowBadResponse(f"{self.base_url} kept paging {path} past {MAX_PAGES} pages; stopping.")

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        url = self.base_url + API_PREFIX + path
        try:
            response = self._session.get(url, params=dict(params), timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise MlflowUnreachable(
                f"TLS to {self.base_url} failed ({type(exc).__name__}): set MLFLOW_TRACKING_SERVER_CERT_PATH "
                "to the server's CA bundle if it uses a private CA."
            ) from None
        except requests.exceptions.RetryError:
            raise MlflowServerError(f"{self.base_url} kept failing {path} after {self.attempts} tries.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            what = "timed out" if _is_timeout(exc) else "refused or could not be reached"
            raise MlflowUnreachable(
                f"The MLflow server at {self.base_url} {what} ({self.attempts} tries): "
                "check --tracking-uri and that the server is running."
            ) from None
        log.debug("GET %s%s -> %s", API_PREFIX, path, response.status_code)
        body = _json(response)
        status = response.status_code
        if status in (401, 403):
            raise MlflowAuthError(
                f"The MLflow server at {self.base_url} refused access ({status} "
                f"{'Unauthorized' if status == 401 else 'Forbidden'}) with {self._auth_hint}."
            )
        if status >= 400:
            code = str(body.get("error_code") or "") if isinstance(body, dict) else ""
            message = _preview(str(body.get("message") or ""), 200) if isinstance(body, dict) else ""
            detail = f": {code} {message}".rstrip() if code or message else ""
            if status == 404 and code == "RESOURCE_DOES_NOT_EXIST":
                raise MlflowNotFound(f"{path}{detail}")
            if status in RETRY_STATUSES:
                raise MlflowServerError(
                    f"The MLflow server at {self.base_url} answered {status} {response.reason or ''} to {path} "
                    f"after {self.attempts} tries{detail}".replace("  ", " ")
                )
            if status == 404:
                raise MlflowBadResponse(
                    f"{self.base_url} has no {API_PREFIX}{path} (404{detail}): is this an MLflow tracking server "
                    "(MLflow ≥ 2.3)?"
                )
            raise MlflowRequestError(f"The MLflow server at {self.base_url} refused {path} ({status}{detail}).")
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise MlflowBadResponse(
                f"{self.base_url} answered {path} with {kind}, not MLflow's JSON: "
                "is --tracking-uri the MLflow tracking server (not its UI behind a login page or a proxy)?"
            )
        return body


# ---- parsing --------------------------------------------------------------------------------


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _is_timeout(exc: Exception) -> bool:
    return isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower()


def _field(body: dict[str, Any], key: str, kind: type, path: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind):
        raise MlflowBadResponse(f"The answer to {path} has no '{key}' object.")
    return value


def _list(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = obj.get(key) or []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _pairs(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(i["key"]): "" if i.get("value") is None else str(i["value"]) for i in items if "key" in i}


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # refused later by metric validation, with the key named


def _time(value: Any) -> datetime | None:
    """MLflow timestamps are epoch milliseconds (numbers, or strings in proto-JSON)."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise MlflowBadResponse(f"'{_preview(str(value))}' is not an MLflow timestamp.") from None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MlflowBadResponse(f"MLflow sent {what} '{_preview(str(value))}', not a number.") from None


def _model(item: dict[str, Any]) -> MlflowModel:
    name = item.get("name")
    if not isinstance(name, str):
        raise MlflowBadResponse("MLflow sent a registered model without a name.")
    aliases = {str(a["alias"]): _int(a.get("version"), f"the version of alias {a['alias']}")
               for a in _list(item, "aliases") if "alias" in a}
    return MlflowModel(
        name=name,
        description=_text(item.get("description")),
        created_at=_time(item.get("creation_timestamp")),
        updated_at=_time(item.get("last_updated_timestamp")),
        aliases=aliases,
        tags=_pairs(_list(item, "tags")),
    )


def _version(item: dict[str, Any]) -> MlflowVersion:
    name = item.get("name")
    if not isinstance(name, str):
        raise MlflowBadResponse("MLflow sent a model version without a model name.")
    return MlflowVersion(
        name=name,
        version=_int(item.get("version"), f"a version number of {name}"),
        created_at=_time(item.get("creation_timestamp")),
        updated_at=_time(item.get("last_updated_timestamp")),
        user_id=_text(item.get("user_id")),
        description=_text(item.get("description")),
        source=_text(item.get("source")),
        run_id=_text(item.get("run_id")),
        run_link=_text(item.get("run_link")),
        storage_location=_text(item.get("storage_location")),
        status=str(item.get("status") or "READY"),
        status_message=_text(item.get("status_message")),
        current_stage=_text(item.get("current_stage")),
        tags=_pairs(_list(item, "tags")),
    )


def _preview(value: str, limit: int = 60) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
